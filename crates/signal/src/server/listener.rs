//! The accept loop's per-address cap. The registry's cap (with its typed error) only sees
//! connections that completed the WebSocket upgrade; a client that opens TCP connections and
//! never sends a request would slip past it and exhaust file descriptors. This listener counts
//! every TCP connection per address from accept to close and drops new ones past a hard cap.
//! With TLS it also runs the handshakes, each in its own task so a slow client cannot hold up
//! the accept loop.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::serve::Listener;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// A TLS handshake not done within this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Counts = Arc<Mutex<HashMap<IpAddr, u32>>>;

/// A `TcpListener` that refuses (closes at once) connections from an address that already holds
/// `cap` of them, and sets `TCP_NODELAY` on the rest.
pub(super) struct CappedListener {
    inner: TcpListener,
    cap: u32,
    counts: Counts,
    /// Connections from these carry many clients; the registry counts those by the address the
    /// proxy forwards for, so the per-address cap here does not apply to them.
    proxies: super::proxy::TrustedProxies,
    on_refuse: Box<dyn Fn(IpAddr) + Send + Sync>,
    tls: Option<TlsAcceptor>,
    handshakes: JoinSet<Option<(Box<TlsStream<CountedStream>>, SocketAddr)>>,
}

impl CappedListener {
    pub(super) fn new(
        inner: TcpListener,
        cap: u32,
        proxies: super::proxy::TrustedProxies,
        on_refuse: impl Fn(IpAddr) + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Self {
            inner,
            cap,
            counts: Arc::default(),
            proxies,
            on_refuse: Box::new(on_refuse),
            tls: tls.map(TlsAcceptor::from),
            handshakes: JoinSet::new(),
        }
    }
}

impl Listener for CappedListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        let Some(tls) = self.tls.clone() else {
            let (s, addr) = accept_tcp(
                &self.inner,
                self.cap,
                &self.counts,
                &self.proxies,
                &*self.on_refuse,
            )
            .await;
            return (Stream::Plain(s), addr);
        };
        loop {
            tokio::select! {
                (s, addr) = accept_tcp(&self.inner, self.cap, &self.counts, &self.proxies, &*self.on_refuse) => {
                    let tls = tls.clone();
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(s)).await {
                            Ok(Ok(s)) => Some((Box::new(s), addr)),
                            Ok(Err(e)) => {
                                tracing::debug!(%addr, error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => None,
                        }
                    });
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some((s, addr))) = done {
                        return (Stream::Tls(s), addr);
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The next TCP connection from an address below its cap.
async fn accept_tcp(
    inner: &TcpListener,
    cap: u32,
    counts: &Counts,
    proxies: &super::proxy::TrustedProxies,
    on_refuse: &(dyn Fn(IpAddr) + Send + Sync),
) -> (CountedStream, SocketAddr) {
    {
        loop {
            let (stream, addr) = match inner.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, typically: give closing connections a moment.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let key = super::limit_key(addr.ip());
            {
                let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
                let n = map.entry(key).or_default();
                if *n >= cap && !proxies.trusts(addr.ip()) {
                    drop(map);
                    on_refuse(key);
                    continue; // dropping `stream` closes it
                }
                *n += 1;
            }
            // Signaling messages are small and latency-bound: never let Nagle hold one back.
            let _ = stream.set_nodelay(true);
            let guard = Guard {
                key,
                counts: counts.clone(),
            };
            return (
                CountedStream {
                    inner: stream,
                    _guard: guard,
                },
                addr,
            );
        }
    }
}

struct Guard {
    key: IpAddr,
    counts: Counts,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// A `TcpStream` that gives its address's slot back when dropped.
pub struct CountedStream {
    inner: TcpStream,
    _guard: Guard,
}

impl std::fmt::Debug for CountedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CountedStream").field(&self.inner).finish()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An accepted connection, in clear or inside TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(CountedStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<CountedStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The remote address of a connection accepted by [`CappedListener`], for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CappedListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> Self {
        Self(*stream.remote_addr())
    }
}
