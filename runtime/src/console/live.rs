//! Live printing: a background thread prints each trace once nothing new arrived for it for a
//! while (see `Reporter::print_live`).

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::transport::ConsoleTransport;
use super::waterfall::Layout;

/// The background printer of [`Reporter::print_live`].
pub(crate) struct Live {
    stop: Arc<(Mutex<Option<bool>>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    pub(crate) fn start(transport: Weak<ConsoleTransport>, quiet: Duration) -> Live {
        // `Some(print_rest)` once asked to stop.
        let stop = Arc::new((Mutex::new(None::<bool>), Condvar::new()));
        let signal = stop.clone();
        let tick = (quiet / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let thread = std::thread::Builder::new()
            .name("traced-spawn-console".to_owned())
            .spawn(move || {
                let (lock, condvar) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let print_rest = *stopped;
                    drop(stopped);
                    let Some(transport) = transport.upgrade() else {
                        return;
                    };
                    if print_rest == Some(false) {
                        return;
                    }
                    for trace in transport.take_settled(quiet, print_rest == Some(true)) {
                        println!("{}", trace.render(&Layout::from_env()));
                    }
                    if print_rest.is_some() {
                        return;
                    }
                    stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    if stopped.is_none() {
                        stopped = condvar
                            .wait_timeout(stopped, tick)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            })
            .expect("failed to spawn the console printer thread");
        Live {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the printer; with `print_rest`, it first prints every trace not printed yet.
    pub(crate) fn stop(mut self, print_rest: bool) {
        let (lock, condvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = Some(print_rest);
        condvar.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
