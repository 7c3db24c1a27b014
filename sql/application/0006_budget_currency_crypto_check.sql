-- 0006: budget_currency limited to crypto currencies (reverted by 0007).
ALTER TABLE purchase_requests
    ADD CONSTRAINT purchase_requests_budget_currency_crypto_ck
        CHECK (budget_currency IN ('USDT', 'USDC', 'ETH', 'BTC'));
