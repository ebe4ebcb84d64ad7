//! The signals that stop a node (SIGTERM, SIGINT), caught from the moment the process starts.
//!
//! A signal that arrives while a node is still starting (Raft opening its store, the cluster
//! forming) is kept until the node can act on it. Without this, the first seconds of a process
//! would either die at once on SIGTERM, skipping the graceful shutdown, or, when started in the
//! background with SIGINT ignored, drop a SIGINT; and in `vigil demo` the nodes that started
//! later would miss the signal the first one took.

use tokio::sync::watch;

/// The first stop signal the process received; every clone sees it, however late it asks.
#[derive(Clone)]
pub struct StopSignal(watch::Receiver<Option<&'static str>>);

impl StopSignal {
    /// Installs the handlers now, inside a tokio runtime, and watches for the first signal.
    pub fn install() -> std::io::Result<StopSignal> {
        let (sender, receiver) = watch::channel(None);
        let first = wait_for_signal()?;
        tokio::spawn(async move {
            let name = first.await;
            // Receivers read the value even after the sender is gone, so it may end here.
            let _ = sender.send(Some(name));
        });
        Ok(StopSignal(receiver))
    }

    /// Waits for the signal and names it (`SIGTERM`, `SIGINT`).
    pub async fn received(&self) -> &'static str {
        let mut receiver = self.0.clone();
        let name = match receiver.wait_for(Option::is_some).await {
            Ok(name) => *name,
            Err(_) => None,
        };
        match name {
            Some(name) => name,
            // The watcher task ended without a signal: only when the runtime stops.
            None => std::future::pending().await,
        }
    }
}

/// Registers the handlers at once and returns a future of the first signal's name.
#[cfg(unix)]
fn wait_for_signal(
) -> std::io::Result<impl std::future::Future<Output = &'static str> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Registers the handler at once and returns a future of the first signal's name.
#[cfg(not(unix))]
fn wait_for_signal(
) -> std::io::Result<impl std::future::Future<Output = &'static str> + Send + 'static> {
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        let _ = ctrl_c.await;
        "SIGINT"
    })
}
