//! A lost answer: the connection breaks before the body, as a proxy, a load balancer or a
//! network does, so that the caller cannot tell whether its request was processed. Used by the
//! fault proxy and by the Secret Manager stand-in's own faults.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An answer whose connection breaks before its body: the caller sees a connection closed
/// before the message completed, and cannot tell whether the request was processed.
pub(crate) fn broken() -> Response {
    let body = axum::body::Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected: connection closed before the answer",
        ))
    }));
    (StatusCode::OK, body).into_response()
}
