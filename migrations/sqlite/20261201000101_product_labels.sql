-- Labels: the classifier head's top-k class names with scores, given to
-- each product at ingest (`catalog::sync`), as JSON
-- `[{"name": "teapot", "score": 0.83}, …]`; NULL until its image is embedded
-- by a model with a classifier head (or backfilled by `vitrine reindex`).
ALTER TABLE products ADD COLUMN labels TEXT;

-- The text index of 20261201000100 gains the label names, so that "teapot"
-- finds a teapot titled "Чайник заварочный". FTS5 cannot add a column: the
-- table and its triggers are made again, and refilled.
DROP TRIGGER products_text_insert;
DROP TRIGGER products_text_update;
DROP TRIGGER products_text_delete;
DROP TABLE product_text;

CREATE VIRTUAL TABLE product_text USING fts5(
    product_id UNINDEXED,
    title,
    description,
    category,
    labels,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER products_text_insert AFTER INSERT ON products
BEGIN
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category, labels)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е'),
               (SELECT group_concat(json_extract(value, '$.name'), ' ') FROM json_each(new.labels))
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_update
    AFTER UPDATE OF title, description, category, status, labels ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    INSERT INTO product_text_ids (product_id)
        SELECT new.product_id
        WHERE NOT EXISTS (SELECT 1 FROM product_text_ids WHERE product_id = new.product_id);
    INSERT INTO product_text (rowid, product_id, title, description, category, labels)
        SELECT i.rowid, new.product_id,
               replace(replace(new.title, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.description, 'ё', 'е'), 'Ё', 'Е'),
               replace(replace(new.category, 'ё', 'е'), 'Ё', 'Е'),
               (SELECT group_concat(json_extract(value, '$.name'), ' ') FROM json_each(new.labels))
        FROM product_text_ids i
        WHERE i.product_id = new.product_id AND new.status <> 'deleted';
END;

CREATE TRIGGER products_text_delete AFTER DELETE ON products
BEGIN
    DELETE FROM product_text
        WHERE rowid = (SELECT rowid FROM product_text_ids WHERE product_id = old.product_id);
    DELETE FROM product_text_ids WHERE product_id = old.product_id;
END;

INSERT INTO product_text_ids (product_id)
    SELECT product_id FROM products p
    WHERE NOT EXISTS (SELECT 1 FROM product_text_ids i WHERE i.product_id = p.product_id);
INSERT INTO product_text (rowid, product_id, title, description, category, labels)
    SELECT i.rowid, p.product_id,
           replace(replace(p.title, 'ё', 'е'), 'Ё', 'Е'),
           replace(replace(p.description, 'ё', 'е'), 'Ё', 'Е'),
           replace(replace(p.category, 'ё', 'е'), 'Ё', 'Е'),
           NULL
    FROM products p JOIN product_text_ids i ON i.product_id = p.product_id
    WHERE p.status <> 'deleted';
