-- Text search over the catalog (owned by `search::text`): an FTS5 index of
-- each product's title, description and category, kept in step with the
-- `products` row by triggers, so every write path (the catalog's upserts,
-- failures, a manual UPDATE) updates it in the same transaction.
--
-- `unicode61 remove_diacritics 2` folds case (Cyrillic too) and Latin
-- diacritics (café = cafe). It does not fold Cyrillic ё, so the triggers
-- write ё as е (the query side does the same, in `search::text::fold`).
-- Deleted products (tombstones) have no row: they are not in the catalog.
--
-- The triggers use no `OR IGNORE`: inside a trigger an outer statement's
-- conflict policy (an upsert's) overrides it.
--
-- The FTS rowid comes from `product_text_ids`: the rowid of `products`
-- (a TEXT primary key) is not stable across VACUUM, and deleting from an
-- FTS5 table by an UNINDEXED column would scan it.
CREATE TABLE product_text_ids (
    rowid       INTEGER PRIMARY KEY,
    product_id  TEXT    NOT NULL UNIQUE
);

CREATE VIRTUAL TABLE product_text USING fts5(
    product_id UNINDEXED,
    title,
    description,
    category,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER products_text_insert AFTER INSERT ON products
BEGIN
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_update AFTER UPDATE OF title, description, category, status ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е')
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_delete AFTER DELETE ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_text_ids WHERE product_id = old.product_id;
END;

-- Products stored before this migration.
INSERT INTO product_text_ids (product_id) SELECT product_id FROM products;
INSERT INTO product_text (rowid, product_id, title, description, category)
    SELECT i.rowid, p.product_id,
           replace(replace(p.title, 'ё', 'е'), 'Ё', 'Е'),
           replace(replace(p.description, 'ё', 'е'), 'Ё', 'Е'),
           replace(replace(p.category, 'ё', 'е'), 'Ё', 'Е')
    FROM products p JOIN product_text_ids i ON i.product_id = p.product_id
    WHERE p.status <> 'deleted';

-- Filters of the text search (and an index for ever more category use).
CREATE INDEX products_category ON products (category);
