//! Product images from S3 (or an S3-compatible store such as MinIO) via
//! `aws-sdk-s3`: `image_key` is an object key in `S3_BUCKET`.
//!
//! The same rules as HTTP apply: connect and operation timeouts, the byte
//! cap (checked against the object's length and again while streaming), a
//! missing key is a permanent, readable failure and a 5xx or timeout is
//! transient so the inbox retries it.

use std::time::Duration;

use aws_sdk_s3::{
    Client,
    config::{Region, timeout::TimeoutConfig},
    error::SdkError,
    operation::get_object::GetObjectError,
};
use bytes::Bytes;

use super::FetchError;

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Custom endpoint (MinIO, moto, …); path-style addressing is used then.
    pub endpoint: Option<String>,
    pub region: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
}

#[derive(Clone)]
pub struct S3Images {
    client: Client,
    cfg: S3Config,
}

impl S3Images {
    /// Builds a client from the usual AWS credential chain (environment,
    /// profile, instance role). TLS uses rustls with ring, the one crypto
    /// provider this build carries.
    pub async fn connect(cfg: S3Config) -> Self {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(cfg.region.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(cfg.connect_timeout)
                    .operation_timeout(cfg.timeout)
                    .build(),
            )
            .load()
            .await;
        let mut b = aws_sdk_s3::config::Builder::from(&sdk);
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep).force_path_style(true);
        }
        Self {
            client: Client::from_conf(b.build()),
            cfg,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.cfg.bucket
    }

    /// Whether the bucket answers (`HeadBucket`): what health reports.
    pub async fn probe(&self) -> Result<(), FetchError> {
        let shown = format!("s3://{}", self.cfg.bucket);
        match self
            .client
            .head_bucket()
            .bucket(&self.cfg.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => Err(match se.raw().status().as_u16() {
                404 => FetchError::NotFound(shown),
                status => FetchError::Status { url: shown, status },
            }),
            Err(SdkError::TimeoutError(_)) => Err(FetchError::Timeout(shown)),
            Err(e) => Err(FetchError::Network {
                url: shown,
                reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    pub async fn fetch(&self, key: &str) -> Result<Bytes, FetchError> {
        let shown = format!("s3://{}/{key}", self.cfg.bucket);
        let resp = self
            .client
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(&shown, e))?;
        let cap = self.cfg.max_bytes;
        if resp.content_length().is_some_and(|n| n > cap as i64) {
            return Err(FetchError::TooLarge { url: shown, cap });
        }
        let mut body = resp.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| FetchError::Network {
            url: shown.clone(),
            reason: e.to_string(),
        })? {
            if out.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge { url: shown, cap });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
}

fn classify(url: &str, e: SdkError<GetObjectError>) -> FetchError {
    match &e {
        SdkError::ServiceError(se) => {
            if matches!(se.err(), GetObjectError::NoSuchKey(_)) {
                return FetchError::NotFound(url.to_string());
            }
            let status = se.raw().status().as_u16();
            if status == 404 {
                FetchError::NotFound(url.to_string())
            } else {
                FetchError::Status {
                    url: url.to_string(),
                    status,
                }
            }
        }
        SdkError::TimeoutError(_) => FetchError::Timeout(url.to_string()),
        _ => FetchError::Network {
            url: url.to_string(),
            reason: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
        },
    }
}
