//! A TCP relay in front of PostgreSQL that holds the server's replies back
//! once the client has sent a chosen statement, so a test can stop a
//! request exactly between sending a statement and reading its reply,
//! whatever the machine's speed: the reply cannot be read before the test
//! releases it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// The relay: connect to [`ReplyGate::url`] instead of the database.
pub struct ReplyGate {
    url: String,
    marker_sent: Arc<Notify>,
    released: watch::Sender<bool>,
}

impl ReplyGate {
    /// Relays connections to the database at `database_url`
    /// (`postgres://user@host:port/db`) and holds back every reply that
    /// follows a client message containing `marker`.
    pub async fn start(database_url: &str, marker: &'static [u8]) -> Self {
        let (before, rest) = database_url.rsplit_once('@').expect("a URL with user@host");
        let (upstream, database) = rest.split_once('/').expect("a URL with a database");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("{before}@{}/{database}", listener.local_addr().unwrap());
        let marker_sent = Arc::new(Notify::new());
        let (released, release) = watch::channel(false);
        let upstream = upstream.to_owned();
        let sent = marker_sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, marker, sent.clone(), release.clone()));
            }
        });
        Self {
            url,
            marker_sent,
            released,
        }
    }

    /// The URL to connect through the relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Resolves once a client has sent the marker (and it went on to the
    /// database); from then on replies are held.
    pub async fn marker_sent(&self) {
        self.marker_sent.notified().await;
    }

    /// Lets every held reply, and all later ones, through.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    marker: &'static [u8],
    marker_sent: Arc<Notify>,
    mut released: watch::Receiver<bool>,
) {
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut server_reads, mut server_writes) = server.into_split();
    let holding = Arc::new(AtomicBool::new(false));
    let hold = holding.clone();
    let requests = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = match client_reads.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let carries_marker = buffer[..n].windows(marker.len()).any(|w| w == marker);
            // Held before the marker leaves, so its reply cannot slip through.
            if carries_marker {
                hold.store(true, Ordering::SeqCst);
            }
            if server_writes.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            if carries_marker {
                marker_sent.notify_one();
            }
        }
        let _ = server_writes.shutdown().await;
    };
    let replies = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = match server_reads.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if holding.load(Ordering::SeqCst) && released.wait_for(|released| *released).await.is_err() {
                break;
            }
            if client_writes.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_writes.shutdown().await;
    };
    tokio::join!(requests, replies);
}
