-- 0017: the guard role.
ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'guard';
