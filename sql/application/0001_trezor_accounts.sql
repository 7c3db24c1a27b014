-- 0001: first cut of the Trezor wallet tables (dropped again by the 0002 reset).
CREATE TABLE trezor_accounts (
    id          uuid PRIMARY KEY,
    user_id     text NOT NULL,
    xpub        text NOT NULL
);
CREATE TABLE trezor_derived_addresses (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES trezor_accounts (id),
    address     text NOT NULL
);
