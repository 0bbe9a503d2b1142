//! Where attachments' bytes live, behind `object_store`: a directory in the all-in-one, any
//! S3-compatible store (Garage in Compose and Kubernetes) in the distributed mode.
//!
//! S3 is spoken over this module's own HTTP client (hyper with rustls on `ring`, the one
//! crypto provider of every Astral process), not `object_store`'s reqwest one, which would
//! compile a second provider into the process (see `docs/architecture.md`, "Attachments").

use anyhow::Context as _;
use bytes::Bytes;
use futures::stream::BoxStream;
use http_body_util::BodyExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
    HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, RetryConfig, WriteMultipart,
};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to the object store may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for the store's answer to begin.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// A multipart upload's part: S3's smallest (but the last).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// Where the bytes go, as configured.
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    /// `file:///absolute/dir` or `s3://bucket`.
    pub url: String,
    /// The S3 endpoint (`http://garage:3900`); unset means AWS.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
}

/// The object store holding every attachment and thumbnail.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

/// What a stored object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object<'a> {
    /// An attachment's bytes, as uploaded (less image metadata).
    File(&'a str),
    /// An image attachment's thumbnail.
    Thumbnail(&'a str),
}

impl Object<'_> {
    /// Its key in the store (what the deletion queue names).
    pub fn key(self) -> String {
        self.path().to_string()
    }

    fn path(self) -> Path {
        match self {
            Object::File(id) => Path::from_iter(["files", id]),
            Object::Thumbnail(id) => Path::from_iter(["thumbnails", id]),
        }
    }
}

impl Storage {
    /// The store `config` names.
    pub fn open(config: &StorageConfig) -> anyhow::Result<Self> {
        let url = config.url.trim();
        if let Some(dir) = url.strip_prefix("file://") {
            return Self::local(std::path::Path::new(dir));
        }
        let bucket = url.strip_prefix("s3://").with_context(|| {
            format!("ASTRAL_STORAGE_URL must be file:///dir or s3://bucket, not {url:?}")
        })?;
        anyhow::ensure!(
            !bucket.is_empty() && !bucket.contains('/'),
            "ASTRAL_STORAGE_URL names no bucket: {url:?}"
        );
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&config.s3_region)
            .with_http_connector(Connector)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.s3_endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(key) = &config.s3_access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.s3_secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().context("the S3 object store")?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Files under `dir` (created if missing, readable by its owner only).
    pub fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create the attachments directory {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("the attachments directory {}", dir.display()))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Starts writing an object; nothing is visible until [`Writer::finish`].
    pub async fn writer(&self, object: Object<'_>) -> object_store::Result<Writer> {
        let upload = self.store.put_multipart(&object.path()).await?;
        Ok(Writer {
            parts: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
        })
    }

    /// Stores a small object whole.
    pub async fn put(&self, object: Object<'_>, bytes: Bytes) -> object_store::Result<()> {
        self.store.put(&object.path(), bytes.into()).await?;
        Ok(())
    }

    /// An object's bytes, or the `range` of them, as they are read.
    pub async fn read(
        &self,
        object: Object<'_>,
        range: Option<Range<u64>>,
    ) -> object_store::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&object.path(), options).await?;
        Ok(result.into_stream())
    }

    /// An object's bytes, all in memory (thumbnails' sources are bounded by the upload limit).
    pub async fn read_all(&self, object: Object<'_>) -> object_store::Result<Bytes> {
        self.store.get(&object.path()).await?.bytes().await
    }

    /// Removes the object stored under `key` ([`Object::key`]); one already gone is not an
    /// error (deletions are retried).
    pub async fn delete(&self, key: &str) -> object_store::Result<()> {
        match self.store.delete(&Path::parse(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Whether the object exists.
    pub async fn exists(&self, object: Object<'_>) -> object_store::Result<bool> {
        match self.store.head(&object.path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// An object being written part by part: at most one part in memory and one in flight.
pub struct Writer {
    parts: WriteMultipart,
}

impl Writer {
    /// Adds bytes, waiting while a full part is still being sent.
    pub async fn write(&mut self, bytes: &[u8]) -> object_store::Result<()> {
        self.parts.wait_for_capacity(1).await?;
        self.parts.write(bytes);
        Ok(())
    }

    /// Makes the object visible, whole.
    pub async fn finish(self) -> object_store::Result<()> {
        self.parts.finish().await?;
        Ok(())
    }

    /// Drops what was written.
    pub async fn abort(self) -> object_store::Result<()> {
        self.parts.abort().await
    }
}

/// Builds the HTTP client `object_store` speaks S3 with.
#[derive(Debug, Clone, Copy)]
struct Connector;

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| object_store::Error::Generic {
                store: "S3",
                source: Box::new(error),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(Timeouts::wrap(tls));
        Ok(HttpClient::new(Hyper(client)))
    }
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// A connector that gives up on a connection after [`CONNECT_TIMEOUT`].
#[derive(Debug, Clone)]
struct Timeouts(Https);

impl Timeouts {
    fn wrap(inner: Https) -> Self {
        Self(inner)
    }
}

impl tower::Service<http::Uri> for Timeouts {
    type Response = <Https as tower::Service<http::Uri>>::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| "connecting to the object store timed out")?
        })
    }
}

#[derive(Debug)]
struct Hyper(hyper_util::client::legacy::Client<Timeouts, HttpRequestBody>);

#[async_trait::async_trait]
impl HttpService for Hyper {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, self.0.request(request))
            .await
            .map_err(|elapsed| HttpError::new(HttpErrorKind::Timeout, elapsed))?
            .map_err(|error| {
                let kind = if error.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, error)
            })?;
        let (parts, body) = answer.into_parts();
        let body = body.map_err(|error| HttpError::new(HttpErrorKind::Interrupted, error));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
