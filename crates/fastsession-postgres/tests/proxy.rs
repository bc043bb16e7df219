//! A TCP proxy on loopback in front of the shared PostgreSQL server, which a test can switch
//! to "down" (every connection cut, new ones closed at once) or "stalled" (connections stay
//! open but nothing is forwarded) without touching the server itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const UP: u8 = 0;
const STALLED: u8 = 1;
const DOWN: u8 = 2;

#[derive(Clone)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// Starts a proxy to 127.0.0.1:5432 on a free loopback port.
    pub(crate) async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(AtomicU8::new(UP)),
            tasks: Arc::default(),
        };
        let accepting = proxy.clone();
        let handle = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if accepting.mode.load(Ordering::SeqCst) == DOWN {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432").await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                accepting.forward(client_read, server_write);
                accepting.forward(server_read, client_write);
            }
        });
        proxy.keep(handle.abort_handle());
        proxy
    }

    /// A connection string that goes through the proxy.
    pub(crate) fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=test",
            self.addr.port()
        )
    }

    /// Cuts every connection and closes new ones at once.
    pub(crate) fn down(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        // The first task is the acceptor; it stays.
        for task in tasks.drain(1..) {
            task.abort();
        }
    }

    /// Keeps connections open but forwards nothing.
    pub(crate) fn stall(&self) {
        self.mode.store(STALLED, Ordering::SeqCst);
    }

    /// Forwards again (connections cut while down stay cut).
    pub(crate) fn up(&self) {
        self.mode.store(UP, Ordering::SeqCst);
    }

    fn keep(&self, task: AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    fn forward(
        &self,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
    ) {
        let mode = self.mode.clone();
        let handle = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // Stalled: hold the bytes (bounded: a test ends the stall or drops the proxy).
                while mode.load(Ordering::SeqCst) == STALLED {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if mode.load(Ordering::SeqCst) == DOWN || to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        self.keep(handle.abort_handle());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The last handle stops every task.
        if Arc::strong_count(&self.tasks) == 1 {
            for task in self
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
            {
                task.abort();
            }
        }
    }
}
