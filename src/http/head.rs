//! Request heads checked before actix parses them.
//!
//! actix-http answers a request line it cannot parse (a path over 64 KiB among them) with
//! an empty 400, and a head over 128 KiB or 96 fields with an empty 431, before any
//! handler or middleware runs, and offers no hook to change those answers. So every
//! connection reads through [`GuardedStream`], which gathers each request head and checks
//! it with the parser actix uses: a head within the limits goes on unchanged; one that is
//! too long or malformed is replaced by a small request that the app answers with a
//! problem document (414, 431 or 400) before closing the connection.
//!
//! Bodies pass through untouched: the stream follows `Content-Length` to find the next
//! head. After a head whose body it cannot measure (chunked, an upgrade), it stops
//! checking that connection and actix's own limits and plain answers apply again.

use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, Response};
use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::body::MessageBody;
use actix_web::dev::{fn_service, AppConfig, Server, ServiceFactory};
use actix_web::http::{Method, Uri};
use actix_web::rt::net::TcpStream;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::problem::ApiError;

/// The longest request line (method, target and version), in bytes.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// The largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in a head (actix's own limit).
pub const MAX_HEADER_FIELDS: usize = 96;
/// What a refused connection reads and drops before closing, so that the client, still
/// sending, is not reset before it has read the answer.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// What the app is handed in place of a refused head; the connection's [`Refusal`]
/// says why.
const STAND_IN: &[u8] =
    b"GET /request-refused HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RequestLineTooLong,
    HeadTooLarge,
    Malformed,
}

impl Refusal {
    pub fn error(self) -> ApiError {
        match self {
            Self::RequestLineTooLong => ApiError::UriTooLong {
                limit: MAX_REQUEST_LINE,
            },
            Self::HeadTooLarge => ApiError::HeadersTooLarge {
                limit: MAX_HEAD,
                fields: MAX_HEADER_FIELDS,
            },
            Self::Malformed => {
                ApiError::BadRequest("The request line or a header is not valid HTTP/1.1.".into())
            }
        }
    }
}

/// The refusal of a connection's head, if any, as the app sees it (connection data).
#[derive(Debug, Clone, Default)]
pub struct RefusedHead(Arc<OnceLock<Refusal>>);

impl RefusedHead {
    /// The refusal of a request's head, when the request is the stand-in for one.
    pub fn of(req: &HttpRequest) -> Option<ApiError> {
        req.conn_data::<RefusedHead>()
            .and_then(|r| r.0.get())
            .map(|refusal| refusal.error())
    }
}

/// Serves the app `factory` builds on `listener`, as `HttpServer` does (HTTP/1.1, its
/// time-outs), with every connection read through a [`GuardedStream`].
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    workers: Option<usize>,
    factory: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    B: MessageBody + 'static,
{
    let local = listener.local_addr()?;
    // Stop signals are the application's: it marks itself draining before stopping.
    let mut builder = Server::build().shutdown_timeout(10).disable_signals();
    if let Some(workers) = workers {
        builder = builder.workers(workers.max(1));
    }
    let server = builder
        .listen("consentry", listener, move || {
            let app = factory()
                .into_factory()
                .map_err(|err| err.into().error_response());
            let http = HttpService::build()
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(local)
                .on_connect_ext(|io: &GuardedStream<TcpStream>, data| {
                    data.insert(io.refusal.clone());
                })
                .finish(map_config(app, |_| AppConfig::default()));
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((GuardedStream::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}

enum State {
    /// Gathering a request head.
    Head,
    /// Passing on this many more bytes of a body.
    Body(u64),
    /// Passing everything on unchecked.
    Unchecked,
    /// The head was refused; reading on only to drop what arrives.
    Refused { dropped: usize },
}

/// A client connection whose request heads are checked before actix reads them.
pub struct GuardedStream<T> {
    io: T,
    state: State,
    /// Read from the client and not yet handed on.
    held: BytesMut,
    /// How much of `held` has been searched for the end of a head.
    searched: usize,
    /// Handed on to actix before anything else.
    ready: Bytes,
    refusal: RefusedHead,
    /// The write side has been shut down.
    closed: bool,
}

impl<T> GuardedStream<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            state: State::Head,
            held: BytesMut::new(),
            searched: 0,
            ready: Bytes::new(),
            refusal: RefusedHead::default(),
            closed: false,
        }
    }

    /// Decides on the head gathered so far, moving to the next state.
    fn check_head(&mut self) -> bool {
        // Empty lines before a request line are allowed and skipped.
        while self.held.starts_with(b"\n") || self.held.starts_with(b"\r\n") {
            let skip = if self.held[0] == b'\n' { 1 } else { 2 };
            let _ = self.held.split_to(skip);
            self.searched = 0;
        }
        let from = self.searched.saturating_sub(2);
        let end = find_head_end(&self.held[from..]).map(|e| from + e);
        self.searched = self.held.len();
        let line = self
            .held
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(self.held.len());
        let verdict = if line > MAX_REQUEST_LINE {
            Some(Err(Refusal::RequestLineTooLong))
        } else if let Some(end) = end.filter(|e| *e <= MAX_HEAD) {
            inspect(&self.held[..end]).map(|framing| framing.map(|f| (end, f)))
        } else if self.held.len() > MAX_HEAD {
            Some(Err(Refusal::HeadTooLarge))
        } else {
            None
        };
        match verdict {
            None => false,
            Some(Ok((end, framing))) => {
                self.ready = self.held.split_to(end).freeze();
                self.searched = 0;
                self.state = framing;
                true
            }
            Some(Err(refusal)) => {
                self.held.clear();
                self.searched = 0;
                let _ = self.refusal.0.set(refusal);
                self.ready = Bytes::from_static(STAND_IN);
                self.state = State::Refused { dropped: 0 };
                true
            }
        }
    }
}

/// The length of the head at the start of `bytes`, up to its empty line, if it ends.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(2)
        .enumerate()
        .find_map(|(i, pair)| match pair {
            [b'\n', b'\n'] => Some(i + 2),
            [b'\n', b'\r'] if bytes.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        })
}

/// Parses a whole head as actix will; `None` if it is not whole after all.
fn inspect(head: &[u8]) -> Option<Result<State, Refusal>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADER_FIELDS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return None,
        Err(httparse::Error::TooManyHeaders) => return Some(Err(Refusal::HeadTooLarge)),
        Err(_) => return Some(Err(Refusal::Malformed)),
    }
    let method = request.method.map(|m| Method::from_bytes(m.as_bytes()));
    let target = request.path.map(Uri::try_from);
    if !matches!(method, Some(Ok(_))) || !matches!(target, Some(Ok(_))) {
        return Some(Err(Refusal::Malformed));
    }
    if method.is_some_and(|m| m.is_ok_and(|m| m == Method::CONNECT)) {
        return Some(Ok(State::Unchecked));
    }
    let mut length = None;
    for field in request.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("transfer-encoding") || name.eq_ignore_ascii_case("upgrade") {
            return Some(Ok(State::Unchecked));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(field.value).map(str::trim);
            match value.ok().filter(|v| !v.starts_with('+')).map(str::parse) {
                Some(Ok(n)) if length.is_none() => length = Some(n),
                // actix refuses these itself.
                _ => return Some(Ok(State::Unchecked)),
            }
        }
    }
    Some(Ok(State::Body(length.unwrap_or(0))))
}

impl<T: AsyncRead + Unpin> GuardedStream<T> {
    /// Reads from the client into `held`; false at the end of the stream.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut chunk = [0u8; 8192];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.held.extend_from_slice(buf.filled());
        Poll::Ready(Ok(!buf.filled().is_empty()))
    }

    /// Reads and drops what a refused client still sends; ready at its end or the limit.
    fn drop_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let State::Refused { dropped } = self.state {
            if dropped > DRAIN_LIMIT || !ready!(self.fill(cx))? {
                break;
            }
            self.state = State::Refused {
                dropped: dropped + self.held.len(),
            };
            self.held.clear();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match this.state {
                State::Head => {
                    if this.check_head() {
                        continue;
                    }
                    if !ready!(this.fill(cx))? {
                        // The client is gone mid-head: actix sees what there was, then
                        // the end.
                        this.ready = this.held.split().freeze();
                        this.state = State::Unchecked;
                        if this.ready.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
                State::Body(0) => this.state = State::Head,
                State::Body(left) if !this.held.is_empty() => {
                    let n = this
                        .held
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    this.ready = this.held.split_to(n).freeze();
                    this.state = State::Body(left - n as u64);
                }
                State::Body(left) => {
                    let start = buf.filled().len();
                    ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                    let read = (buf.filled().len() - start) as u64;
                    if read > left {
                        // The next head began in the same read: keep it back.
                        let end = start + left as usize;
                        this.held.extend_from_slice(&buf.filled()[end..]);
                        buf.set_filled(end);
                    }
                    this.state = State::Body(left.saturating_sub(read));
                    return Poll::Ready(Ok(()));
                }
                State::Unchecked if !this.held.is_empty() => {
                    this.ready = this.held.split().freeze();
                }
                State::Unchecked => return Pin::new(&mut this.io).poll_read(cx, buf),
                State::Refused { .. } => {
                    // Nothing more for actix: the stand-in asked to close.
                    ready!(this.drop_input(cx))?;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// After a refusal, the answer is sent and the write side closed first; what the
    /// client still sends is then read and dropped (for at most the disconnect time-out),
    /// so that closing does not reset the connection before the client has read it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closed {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.closed = true;
        }
        this.drop_input(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(head: &[u8]) -> (Option<Refusal>, Vec<u8>) {
        let mut stream = GuardedStream::new(());
        stream.held.extend_from_slice(head);
        stream.check_head();
        (stream.refusal.0.get().copied(), stream.ready.to_vec())
    }

    #[test]
    fn a_head_within_the_limits_goes_on_unchanged() {
        let head = b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n";
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"{}GET /healthz HTTP/1.1\r\n");
        let (refusal, ready) = verdict(&bytes);
        assert_eq!(refusal, None);
        assert_eq!(ready, head);
    }

    #[test]
    fn long_lines_large_heads_and_bad_syntax_are_refused() {
        let line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(
            verdict(line.as_bytes()).0,
            Some(Refusal::RequestLineTooLong)
        );
        // Still being sent: refused as soon as the line is too long.
        assert_eq!(
            verdict(&line.as_bytes()[..MAX_REQUEST_LINE + 1]).0,
            Some(Refusal::RequestLineTooLong)
        );
        let big = format!("GET / HTTP/1.1\r\nx-big: {}\r\n", "b".repeat(MAX_HEAD));
        assert_eq!(verdict(big.as_bytes()).0, Some(Refusal::HeadTooLarge));
        let many: String = (0..=MAX_HEADER_FIELDS)
            .map(|i| format!("x-{i}: 1\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(verdict(many.as_bytes()).0, Some(Refusal::HeadTooLarge));
        for bad in [&b"GET / HTTP/9.9\r\n\r\n"[..], b"G\x01T / HTTP/1.1\r\n\r\n"] {
            assert_eq!(verdict(bad).0, Some(Refusal::Malformed));
        }
        let (_, ready) = verdict(b"GET /\x7f HTTP/1.1\r\n\r\n");
        assert_eq!(ready, STAND_IN);
    }

    #[test]
    fn an_unfinished_head_waits_and_empty_lines_before_it_are_skipped() {
        let (refusal, ready) = verdict(b"\r\n\nGET / HTTP/1.1\r\nhost: x\r\n");
        assert_eq!((refusal, ready.len()), (None, 0));
        let (refusal, ready) = verdict(b"\r\n\nGET / HTTP/1.1\nhost: x\n\n");
        assert_eq!(refusal, None);
        assert_eq!(ready, b"GET / HTTP/1.1\nhost: x\n\n");
    }

    #[test]
    fn bodies_it_cannot_measure_end_the_checks() {
        for head in [
            &b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nupgrade: websocket\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        ] {
            let mut stream = GuardedStream::new(());
            stream.held.extend_from_slice(head);
            assert!(stream.check_head());
            assert!(matches!(stream.state, State::Unchecked));
        }
    }
}
