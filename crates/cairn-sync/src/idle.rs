//! A reader that gives up when its peer goes quiet: each read may wait at most `idle` for the
//! next byte. Unlike a deadline on a whole frame, a slow but live link is never cut off; a peer
//! that stops sending is, within `idle`, with an error that says so.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, with an idle timeout on every read.
#[derive(Debug)]
pub struct IdleReader<R> {
    inner: R,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether a read is under way (the timer runs from its start, not from the last byte: time
    /// this side spent elsewhere between reads is not the peer's silence).
    waiting: bool,
}

impl<R> IdleReader<R> {
    pub fn new(inner: R, idle: Duration) -> IdleReader<R> {
        IdleReader {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
        }
    }

    /// How long a read may wait for data.
    pub fn idle(&self) -> Duration {
        self.idle
    }
}

/// Whether an I/O error is this reader's idle timeout.
pub fn is_idle_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.waiting {
            let deadline = Instant::now() + this.idle;
            this.timer.as_mut().reset(deadline);
            this.waiting = true;
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                // Data (or the end, or an error) arrived: the next read gets a full `idle`.
                this.waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer sent nothing for {:?}", this.idle),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_quiet_peer_times_out_and_a_trickling_one_does_not() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = IdleReader::new(rx, Duration::from_millis(300));
        let writer = tokio::spawn(async move {
            // Ten bytes over a second: slower than the whole read may take, but never idle.
            for b in 0..10u8 {
                tx.write_all(&[b]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tx
        });
        let mut got = [0u8; 10];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let _tx = writer.await.unwrap();
        let e = r.read_u8().await.unwrap_err();
        assert!(is_idle_timeout(&e), "{e}");
    }

    #[tokio::test]
    async fn time_spent_elsewhere_between_reads_is_not_the_peers_silence() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = IdleReader::new(rx, Duration::from_millis(300));
        tx.write_all(&[1]).await.unwrap();
        assert_eq!(r.read_u8().await.unwrap(), 1);
        // This side is busy (storing what it got) for longer than the idle time; the peer waits
        // for its answer, then sends soon after the next read starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.write_all(&[2]).await.unwrap();
            tx
        });
        assert_eq!(r.read_u8().await.unwrap(), 2);
        drop(writer.await.unwrap());
    }
}
