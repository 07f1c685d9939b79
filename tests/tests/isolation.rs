//! Isolation: a traced body runs in a hub forked from its caller's. It sees the caller's scope,
//! but what it sets on its own (tags, ...) does not leak to the caller nor to its siblings, and
//! continuations running at the same time, or one context continued twice, are not mixed.

use traced_spawn::{traced_spawn, TraceContext};
use traced_spawn_tests::{capture, in_request, sampled, tx_trace};

// std threads: `#[traced_spawn]` on sync fns.

#[traced_spawn]
fn tag_and_report(label: &'static str) {
    sentry::configure_scope(|scope| scope.set_tag("body", label));
}

#[test]
fn scope_is_forked_not_shared() {
    let captured = capture(sampled(), || {
        sentry::configure_scope(|scope| scope.set_tag("caller", "yes"));
        in_request("request", |_| {
            let a = tag_and_report("a");
            let b = tag_and_report("b");
            a.join().unwrap();
            b.join().unwrap();
        });
    });
    let request = captured.only("request");
    assert_eq!(request.tags.get("caller").map(String::as_str), Some("yes"));
    assert!(
        !request.tags.contains_key("body"),
        "body tag leaked to the caller"
    );
    let bodies = captured.named("isolation::tag_and_report");
    assert_eq!(bodies.len(), 2);
    let mut labels: Vec<_> = bodies
        .iter()
        .map(|tx| {
            assert_eq!(tx.tags.get("caller").map(String::as_str), Some("yes"));
            tx.tags["body"].clone()
        })
        .collect();
    labels.sort();
    assert_eq!(labels, ["a", "b"], "each body sees only its own tag");
}

/// `#[traced_spawn]` on async fns: tokio tasks, spawned from a worker of a multi-thread runtime.
mod tasks {
    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{capture, in_span, on_worker, sampled};

    #[traced_spawn]
    async fn tag(label: &'static str) {
        sentry::configure_scope(|scope| scope.set_tag("body", label));
        tokio::task::yield_now().await;
    }

    #[test]
    fn scope_is_forked_not_shared() {
        let captured = capture(sampled(), || {
            on_worker(async {
                sentry::configure_scope(|scope| scope.set_tag("caller", "yes"));
                let tx = sentry::start_transaction(sentry::TransactionContext::new(
                    "request",
                    "http.server",
                ));
                let (a, b) = in_span(&tx, || (tag("a"), tag("b")));
                a.await.unwrap();
                b.await.unwrap();
                tx.finish();
            });
        });
        let request = captured.only("request");
        assert_eq!(request.tags.get("caller").map(String::as_str), Some("yes"));
        assert!(!request.tags.contains_key("body"));
        let mut labels: Vec<_> = captured
            .named("isolation::tasks::tag")
            .iter()
            .map(|tx| {
                assert_eq!(tx.tags.get("caller").map(String::as_str), Some("yes"));
                tx.tags["body"].clone()
            })
            .collect();
        labels.sort();
        assert_eq!(labels, ["a", "b"]);
    }
}

// Without the macro: one captured `TraceContext`, cloned and run on two threads.

#[test]
fn a_cloned_context_continues_twice_in_separate_hubs() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let ctx = TraceContext::capture();
            let other = ctx.clone();
            let a = std::thread::spawn(move || {
                ctx.run("a", "thread", || {
                    sentry::configure_scope(|s| s.set_tag("who", "a"))
                })
            });
            let b = std::thread::spawn(move || {
                other.run("b", "thread", || {
                    sentry::configure_scope(|s| s.set_tag("who", "b"))
                })
            });
            a.join().unwrap();
            b.join().unwrap();
        });
    });
    let request = tx_trace(captured.only("request"));
    for name in ["a", "b"] {
        let tx = captured.only(name);
        assert_eq!(tx_trace(tx).parent_span_id, Some(request.span_id));
        assert_eq!(tx.tags["who"], name);
    }
}
