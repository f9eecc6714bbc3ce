//! One integration-test binary (one link, one model load per test app) that
//! spawns the real application on random ports. Needs the assets from
//! `scripts/fetch-assets.sh`: the real model, ONNX Runtime and real photos.

mod alerts;
mod auth_walk;
mod bots;
mod channels;
mod cli;
mod crm;
mod duplicates;
mod edges;
mod event_audit;
mod failures;
mod fetch;
mod helpers;
mod hostile_images;
mod inbox_ops;
mod openapi;
mod ordering;
mod outages;
mod pipeline;
mod reindex;
mod reliability;
mod restart;
mod s3;
mod scale;
mod search;
mod stats;
mod web;
mod webhooks;
