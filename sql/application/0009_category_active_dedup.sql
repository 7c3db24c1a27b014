-- 0009: active category names are unique by their visible, normalized form. Duplicate
-- active labels are deactivated first (the oldest one by created_at, then id, stays active).
WITH ranked AS (
    SELECT id,
           row_number() OVER (PARTITION BY lower(btrim(name))
                              ORDER BY created_at, legacy_object_id) AS rn
    FROM categories
    WHERE is_active
)
UPDATE categories c SET is_active = false, updated_at = now()
FROM ranked r
WHERE c.id = r.id AND r.rn > 1;

CREATE UNIQUE INDEX categories_active_name_norm_uq
    ON categories (lower(btrim(name))) WHERE is_active;
