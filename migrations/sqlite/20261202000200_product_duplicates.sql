-- Near-duplicate pairs found at ingest (src/catalog/duplicates.rs): two
-- products whose images' cosine similarity reached duplicates.threshold, or
-- whose images are identical. One row per pair, the smaller id first.
CREATE TABLE product_duplicates (
    a_id       TEXT    NOT NULL,
    b_id       TEXT    NOT NULL,
    score      REAL NOT NULL,
    identical  BIGINT  NOT NULL,   -- 1 when both images have the same sha256
    found_at   BIGINT  NOT NULL,
    PRIMARY KEY (a_id, b_id)
);
CREATE INDEX product_duplicates_b ON product_duplicates (b_id);
-- The identical-image lookup at ingest.
CREATE INDEX products_image_sha256 ON products (image_sha256);
