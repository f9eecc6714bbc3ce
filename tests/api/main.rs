//! One integration-test binary (one link, one model load per test app) that
//! spawns the real application on random ports. Needs the assets from
//! `scripts/fetch-assets.sh`: the real model, ONNX Runtime and real photos.

mod cli;
mod edges;
mod event_audit;
mod failures;
mod fetch;
mod helpers;
mod openapi;
mod ordering;
mod pipeline;
mod reindex;
mod restart;
mod s3;
mod scale;
mod web;
mod webhooks;
