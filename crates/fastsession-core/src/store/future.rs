//! The future a store method returns: ready at once, or boxed I/O.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, ErrorKind, Result};

/// The outcome of a [`Store`](super::Store) or [`Backend`](super::Backend) call: either known
/// at once (a cookie sealed, a map read in memory) or the boxed future of its I/O.
///
/// Awaiting it is all a caller does. A store with nothing to wait for answers with
/// [`ready`](Self::ready), which allocates nothing; one that talks to a server answers with
/// [`io`](Self::io).
///
/// # Examples
///
/// ```
/// use fastsession::store::StoreFuture;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// // Known at once: no allocation, no waiting.
/// let now: StoreFuture<'_, u32> = StoreFuture::ready(Ok(1));
/// // Behind I/O: boxed once.
/// let later: StoreFuture<'_, u32> = StoreFuture::io(async { Ok(2) });
/// assert_eq!(now.await? + later.await?, 3);
/// # Ok::<(), fastsession::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a store call does nothing unless awaited"]
pub struct StoreFuture<'a, T> {
    inner: Inner<'a, T>,
}

enum Inner<'a, T> {
    Ready(Option<Result<T>>),
    Io(Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>),
}

impl<'a, T> StoreFuture<'a, T> {
    /// Returns an outcome known now.
    pub fn ready(outcome: Result<T>) -> Self {
        StoreFuture {
            inner: Inner::Ready(Some(outcome)),
        }
    }

    /// Returns an outcome that needs I/O first.
    pub fn io(future: impl Future<Output = Result<T>> + Send + 'a) -> Self {
        StoreFuture {
            inner: Inner::Io(Box::pin(future)),
        }
    }
}

#[cfg(test)]
impl<T> StoreFuture<'_, T> {
    /// The outcome of a store call known at once; panics if it needs I/O.
    pub(crate) fn now(self) -> Result<T> {
        match self.inner {
            Inner::Ready(Some(outcome)) => outcome,
            _ => panic!("the store call needed I/O"),
        }
    }
}

// Nothing in it is pinned in place: the output waits in an `Option`, the I/O in its own box.
impl<T> Unpin for StoreFuture<'_, T> {}

impl<T> Future for StoreFuture<'_, T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.get_mut().inner {
            Inner::Ready(outcome) => Poll::Ready(outcome.take().unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::Internal,
                    "a store's future was polled after it completed",
                ))
            })),
            Inner::Io(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            Inner::Ready(_) => "StoreFuture::Ready",
            Inner::Io(_) => "StoreFuture::Io",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn a_ready_outcome_is_given_once() {
        let mut future = StoreFuture::ready(Ok(7));
        assert_send(&future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(
            Pin::new(&mut future).poll(&mut cx),
            Poll::Ready(Ok(7))
        ));
        let Poll::Ready(Err(again)) = Pin::new(&mut future).poll(&mut cx) else {
            panic!("a second poll must fail, not hang or repeat")
        };
        assert_eq!(again.kind(), ErrorKind::Internal);
    }
}
