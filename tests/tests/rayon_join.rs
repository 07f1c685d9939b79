//! `RayonHandle::join` called on a rayon worker keeps that worker's pool working while it waits,
//! as rayon's own `join` and `scope` do: joining traced jobs inside `par_iter` never deadlocks,
//! on rayon's global pool as on a pool of its own. (`#[traced_spawn(rayon)]` spawns with
//! `rayon::spawn`: on the pool of the worker that calls it, the global pool elsewhere; so the jobs
//! of a `par_iter` wait in the very queues of the workers that join them.)
//!
//! A test binary of its own: it builds rayon's global pool with 2 threads (a small pool, as on a
//! 2-core machine, whose workers are soon all waiting in joins) before anything else uses it; a
//! global pool cannot be resized once built.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use traced_spawn::traced_spawn;
use traced_spawn_tests::{capture, in_request, sampled, tx_trace, Captured};

/// How long a test may wait for its joins before the wait is reported as a deadlock.
const DEADLOCK: Duration = Duration::from_secs(60);

/// Items joined inside each `par_iter`.
const ITEMS: u32 = 200;

/// rayon's global pool, with 2 threads; every test of this binary calls it first.
fn global_pool_of_two() {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build_global()
            .expect("nothing used rayon's global pool before");
    });
}

/// Runs `f` on a thread of its own and returns its output, or fails the test when it has not
/// returned within [`DEADLOCK`] (the thread is left blocked; the process ends with the tests).
fn without_deadlock<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, recv) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = send.send(f());
    });
    match recv.recv_timeout(DEADLOCK) {
        Ok(out) => out,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {DEADLOCK:?}: the joins deadlocked")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends its output before it ends"),
        },
    }
}

#[traced_spawn(rayon)]
fn process(item: u32) -> u32 {
    item * 2
}

/// Joins `process` for every item inside `par_iter`, on `pool` or else where the caller is, and
/// returns how many joined with the expected output. Each item runs under the caller's hub
/// (rayon's workers have hubs of their own), captured here, before `install` leaves this thread.
fn join_each_in_par_iter(items: &[u32], pool: Option<&rayon::ThreadPool>) -> usize {
    let join =
        traced_spawn::in_current_trace(|item: u32| process(item).join().ok() == Some(item * 2));
    let count = || {
        items
            .par_iter()
            .copied()
            .map(&join)
            .filter(|joined| *joined)
            .count()
    };
    match pool {
        Some(pool) => pool.install(count),
        None => count(),
    }
}

/// Every `process` job sent one transaction, continuing the request: its trace, with the request's
/// span as parent.
fn assert_each_job_continues_the_request(captured: &Captured) {
    let request = tx_trace(captured.only("request"));
    let jobs = captured.named("rayon_join::process");
    assert_eq!(jobs.len(), ITEMS as usize, "one transaction per joined job");
    for job in jobs {
        let job = tx_trace(job);
        assert_eq!(job.trace_id, request.trace_id, "the caller's trace");
        assert_eq!(
            job.parent_span_id,
            Some(request.span_id),
            "the caller's span"
        );
        assert_eq!(job.op.as_deref(), Some("task.rayon"));
    }
}

#[test]
fn joining_traced_jobs_inside_par_iter_on_the_global_pool_does_not_deadlock() {
    global_pool_of_two();
    let items: Vec<u32> = (0..ITEMS).collect();
    let started = Instant::now();
    let (joined, captured) = without_deadlock("par_iter on the global pool", move || {
        let mut joined = 0;
        let captured = capture(sampled(), || {
            in_request("request", |_| joined = join_each_in_par_iter(&items, None));
        });
        (joined, captured)
    });
    eprintln!(
        "[rayon_join] {ITEMS} jobs joined inside par_iter on the global pool (2 threads) in {:?}",
        started.elapsed()
    );
    assert_eq!(joined, ITEMS as usize);
    assert_each_job_continues_the_request(&captured);
}

/// Inside `ThreadPool::install`, the jobs run on that pool, as the `par_iter` does.
#[test]
fn joining_traced_jobs_inside_par_iter_on_a_small_pool_does_not_deadlock() {
    global_pool_of_two();
    let items: Vec<u32> = (0..ITEMS).collect();
    let started = Instant::now();
    let (joined, captured) = without_deadlock("par_iter on a pool of 2 threads", move || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut joined = 0;
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                joined = join_each_in_par_iter(&items, Some(&pool));
            });
        });
        (joined, captured)
    });
    eprintln!(
        "[rayon_join] {ITEMS} jobs joined inside par_iter on a pool of 2 threads in {:?}",
        started.elapsed()
    );
    assert_eq!(joined, ITEMS as usize);
    assert_each_job_continues_the_request(&captured);
}

/// Waits until both items of the test below have started (or gives up after 10 s); whether they
/// did.
#[traced_spawn(rayon)]
fn meet(started: Arc<AtomicUsize>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) < 2 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// A worker of one pool joining a job that runs on another pool keeps running its own pool's
/// work meanwhile, as rayon does when a worker waits for work it handed to another pool
/// (`ThreadPool::install` from a worker): on a pool of one thread, the second item starts while
/// the first one's join waits.
#[test]
fn a_worker_joining_a_job_of_another_pool_keeps_running_its_own_pool() {
    global_pool_of_two();
    let met = without_deadlock("a join across pools", || {
        let callers = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let jobs = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        callers.install(|| {
            [0, 1]
                .par_iter()
                .with_max_len(1)
                .map(|_| {
                    started.fetch_add(1, Ordering::SeqCst);
                    // `meet` spawns on the pool it is called on: `jobs`. The handle comes back
                    // through a channel, so that this worker waits for nothing but the join.
                    let (send, handle) = mpsc::sync_channel(1);
                    let started = started.clone();
                    jobs.spawn(move || send.send(meet(started)).unwrap());
                    handle.recv().unwrap().join().unwrap()
                })
                .collect::<Vec<bool>>()
        })
    });
    assert_eq!(
        met,
        [true, true],
        "each item's job saw both items started: the waiting worker ran the other item"
    );
}
