-- Small JPEG copies of product images, made at ingest (src/thumbs) and
-- served by `GET /api/v1/products/{id}/thumbnail`. In the database, so that
-- every instance sharing it can serve every thumbnail.
CREATE TABLE product_thumbnails (
    product_id    TEXT    PRIMARY KEY,
    source_sha256 TEXT    NOT NULL,   -- of the image it was made from
    etag          TEXT    NOT NULL,   -- sha256 of `bytes`, quoted
    content_type  TEXT    NOT NULL,
    bytes         BYTEA    NOT NULL,
    updated_at    BIGINT  NOT NULL
);
