//! Bounded answers: every body rotor reads from the application, a backend or GitHub is read
//! chunk by chunk and no further than [`MAX_BODY`]. The answers rotor expects are a few KiB (a
//! GitHub page of 100 items stays well under 1 MiB), so a larger one is a broken or hostile
//! peer, and buffering it whole could exhaust the runner's memory after the pointer moved and
//! before any rollback.

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;

/// The largest body rotor reads: 1 MiB.
pub const MAX_BODY: usize = 1 << 20;

/// A body rotor stopped reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the cap: read no further.
    #[error("the answer is larger than {} KiB; rotor read no further", MAX_BODY / 1024)]
    TooLarge,
    /// The connection failed while the body was read.
    #[error("the answer broke off: {0}")]
    Broken(String),
}

/// Reads `body` whole when it is at most `cap` bytes; stops at the first chunk past it, and
/// before any when the declared length (`Content-Length`) is already larger.
pub async fn read_capped<B>(body: B, cap: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    if usize::try_from(body.size_hint().lower()).map_or(true, |n| n > cap) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cap {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// [`read_capped`] for a reqwest answer, at [`MAX_BODY`].
pub async fn read_response(resp: reqwest::Response) -> Result<Bytes, BodyError> {
    let resp: http::Response<reqwest::Body> = resp.into();
    read_capped(resp.into_body(), MAX_BODY).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn a_body_at_the_cap_is_read_and_one_byte_more_is_not() {
        let at = Full::new(Bytes::from(vec![b'x'; 64]));
        assert_eq!(read_capped(at, 64).await.map(|b| b.len()), Ok(64));
        let over = Full::new(Bytes::from(vec![b'x'; 65]));
        assert_eq!(read_capped(over, 64).await, Err(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn an_endless_body_of_unknown_length_is_cut_at_the_cap() {
        // No length declared: the chunks keep coming, and reading stops past the cap.
        let chunks = futures_util::stream::repeat_with(|| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(
                &[b'x'; 1024],
            )))
        });
        let body = StreamBody::new(chunks);
        assert_eq!(read_capped(body, 10 * 1024).await, Err(BodyError::TooLarge));
    }
}
