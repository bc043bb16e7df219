//! The tower `Layer`, its `Service` and response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fastsession_core::http::{
    Finished, Handled, SessionConfig, SessionSet, Sessions, StoreErrorPolicy,
};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// A tower [`Layer`] that gives every request lazy sessions and saves them after the
/// handler.
///
/// For each request it puts a [`Sessions`] into the request's extensions; this parses
/// nothing and touches no store. A handler asks it for sessions (or uses the axum
/// extractors); after the handler the layer saves the sessions that changed and adds their
/// `Set-Cookie`, `Vary: Cookie` and `Cache-Control: no-store` headers. A response with a 5xx
/// status, a handler error or a panic saves nothing, except what the handler saved itself
/// with [`Sessions::save`].
///
/// The response body type must implement [`Default`]: an error response has an empty body.
///
/// # Examples
///
/// ```
/// use fastsession::http::StoreErrorPolicy;
/// use fastsession::tower::SessionLayer;
/// use fastsession::{CookieConfig, CookieStore, Key, KeyRing, MemoryStore, SessionConfig};
///
/// struct Prefs; // names the second session: handlers take `NamedSession<Prefs>`
///
/// let keys = KeyRing::new(Key::generate()?);
/// let login = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
/// let prefs = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("prefs")?);
/// let layer = SessionLayer::new(login)
///     .with_named::<Prefs>(prefs)
///     .with_store_error_policy(StoreErrorPolicy::Fail);
/// # let _ = layer;
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<SessionSet>,
}

impl SessionLayer {
    /// Returns a layer whose default session is described by `config`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::tower::SessionLayer;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = SessionLayer::new(config);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(config: SessionConfig) -> Self {
        SessionLayer::from_set(SessionSet::new(config))
    }

    /// Returns a layer serving the sessions of `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::tower::SessionLayer;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// use fastsession::SessionSet;
    ///
    /// let set = SessionSet::new(SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?));
    /// let sessions = SessionLayer::from_set(set);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn from_set(set: SessionSet) -> Self {
        SessionLayer {
            shared: Arc::new(set),
        }
    }

    /// Adds a session named by the type `N`, possibly from another store, which handlers
    /// ask for as `NamedSession<N>`. As [`SessionSet::with_named`].
    ///
    /// # Panics
    ///
    /// At start-up, if `config`'s cookie name is another session's.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::tower::SessionLayer;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// struct Cart; // handlers take `NamedSession<Cart>`
    ///
    /// let login = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let cart = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("cart")?);
    /// let sessions = SessionLayer::new(login).with_named::<Cart>(cart);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_named<N: 'static>(self, config: SessionConfig) -> Self {
        let set = Arc::unwrap_or_clone(self.shared);
        SessionLayer::from_set(set.with_named::<N>(config))
    }

    /// Sets what happens when saving fails after a successful handler (default
    /// [`StoreErrorPolicy::Fail`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::tower::SessionLayer;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig};
    ///
    /// use fastsession::http::StoreErrorPolicy;
    ///
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// // A page that shows nothing of the session: answer even if saving failed.
    /// let sessions = SessionLayer::new(config).with_store_error_policy(StoreErrorPolicy::KeepResponse);
    /// # let _ = sessions;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_store_error_policy(self, policy: StoreErrorPolicy) -> Self {
        let set = Arc::unwrap_or_clone(self.shared);
        SessionLayer::from_set(set.with_store_error_policy(policy))
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sessions", &self.shared)
            .finish()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<SessionSet>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let sessions = Sessions::new(request.headers()).with_set(self.shared.clone());
        request.extensions_mut().insert(sessions.clone());
        ResponseFuture {
            handler: self.inner.call(request),
            stage: Stage::Handler(ToSave {
                sessions,
                policy: self.shared.store_error_policy(),
            }),
        }
    }
}

/// What the layer keeps of a request to save its sessions after the handler.
struct ToSave {
    sessions: Sessions,
    policy: StoreErrorPolicy,
}

/// The save after a handler; the response waits beside it, not in it.
type Saving = Pin<Box<dyn Future<Output = Finished> + Send>>;

pin_project! {
    /// The future of a [`SessionService`] call: the handler, then the save.
    ///
    /// A request that never asked for a session finishes with the handler, with nothing
    /// allocated for saving.
    ///
    /// Like every future, it must not be polled after it completed: it panics then, saying
    /// so, rather than leave the caller waiting forever.
    pub struct ResponseFuture<F, B> {
        // Stays in place to the end: moving on to the save copies only the small `stage`.
        #[pin]
        handler: F,
        stage: Stage<B>,
    }
}

enum Stage<B> {
    Handler(ToSave),
    // The response boxed too, only when the save waits for I/O: the future every request
    // moves stays small, and a store that answers at once allocates nothing more.
    Saving(Saving, Box<Response<B>>),
    Done,
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::mem::replace(this.stage, Stage::Done) {
            Stage::Handler(handle) => {
                let Poll::Ready(result) = this.handler.poll(cx) else {
                    *this.stage = Stage::Handler(handle);
                    return Poll::Pending;
                };
                let response = match result {
                    Ok(response) if handle.sessions.is_accessed() => response,
                    // Untouched sessions, or a failed handler: nothing to save.
                    result => return Poll::Ready(result),
                };
                let handled = if response.status().is_server_error() {
                    Handled::Failed
                } else {
                    Handled::Succeeded
                };
                let mut saving: Saving = Box::pin(handle.sessions.finish(handled, handle.policy));
                // Usually ready at once: a store without I/O.
                match saving.as_mut().poll(cx) {
                    Poll::Ready(finished) => Poll::Ready(Ok(with_headers(response, finished))),
                    Poll::Pending => {
                        *this.stage = Stage::Saving(saving, Box::new(response));
                        Poll::Pending
                    }
                }
            }
            Stage::Saving(mut saving, response) => match saving.as_mut().poll(cx) {
                Poll::Ready(finished) => Poll::Ready(Ok(with_headers(*response, finished))),
                Poll::Pending => {
                    *this.stage = Stage::Saving(saving, response);
                    Poll::Pending
                }
            },
            // A bug in the caller: say so rather than hang (as tower-http's futures do).
            Stage::Done => panic!("SessionService's ResponseFuture polled after it completed"),
        }
    }
}

/// The response after the save: the session headers added, or the error it must become.
fn with_headers<B: Default>(mut response: Response<B>, finished: Finished) -> Response<B> {
    let (headers, error) = finished.into_parts();
    if let Some(error) = error {
        response = Response::new(B::default());
        *response.status_mut() = error.status();
    }
    headers.write_to(response.headers_mut());
    response
}
