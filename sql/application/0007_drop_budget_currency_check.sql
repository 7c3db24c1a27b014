-- 0007: drops the 0006 constraint and makes USDT the budget currency default.
ALTER TABLE purchase_requests DROP CONSTRAINT purchase_requests_budget_currency_crypto_ck;
ALTER TABLE purchase_requests ALTER COLUMN budget_currency SET DEFAULT 'USDT';
