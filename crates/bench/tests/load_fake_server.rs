//! The load generator's maths on an in-process HTTP/1.1 server that answers after a known
//! delay. Assertions are on recorded values and on bounds that hold however fast or slow the
//! machine is (every request takes at least the delay), never on the machine's speed.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tessera_bench::harness::client::{RequestSource, RequestSpec, Target};
use tessera_bench::harness::load::{run_load, LoadPlan, Mode};
use tessera_bench::harness::report::Latency;
use tessera_bench::harness::server::wait_ready;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves every request after `delay` with `status`; counts requests and checks the tenancy
/// headers are present (a request without them gets 400).
async fn fake_server(delay: Duration, status: u16) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // read one request head (GETs only: no body)
                    let end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end);
                    let tenancy = head.contains("x-gw-ims-org-id: bench@adobeorg");
                    let code = if tenancy && head.contains("x-sandbox-name: prod") {
                        status
                    } else {
                        400
                    };
                    tokio::time::sleep(delay).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = b"{\"status\":\"ok\"}";
                    let response = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err()
                        || socket.write_all(body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, served)
}

struct Get;

impl RequestSource for Get {
    fn next_request(&self, _rng: &mut ChaCha8Rng) -> RequestSpec {
        RequestSpec::get("/health")
    }
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_records_at_least_the_server_delay() {
    let delay = Duration::from_millis(20);
    let (addr, served) = fake_server(delay, 200).await;
    let plan = LoadPlan {
        mode: Mode::Closed { concurrency: 2 },
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(600),
        seed: 1,
    };
    let outcome = run_load(Arc::new(Target::from_addr(addr)), Arc::new(Get), &plan)
        .await
        .unwrap();
    let n = outcome.completed();
    assert!(n >= 1);
    assert_eq!(outcome.ok, n, "all answered 200 with the tenancy headers");
    assert_eq!(outcome.transport_errors, 0);
    let l = Latency::of(&outcome.latency_us);
    assert!(l.min >= us(delay), "min {} < delay", l.min);
    assert!(l.p50 >= us(delay));
    assert!(l.p99 >= l.p50 && l.max >= l.p99);
    // A connection sends a recorded request at most once per delay during the window.
    let per_connection = 600 / 20 + 1;
    assert!(
        n <= 2 * per_connection,
        "{n} requests in 600 ms at 20 ms each on 2 connections"
    );
    // Warm-up requests were sent but not recorded.
    assert!(served.load(Ordering::SeqCst) > n);
    assert_eq!(outcome.unsent, 0);
    assert!((outcome.throughput() - n as f64 / 0.6).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_charges_queueing_to_the_server() {
    // One connection, 100 req/s scheduled (every 10 ms), server needs 40 ms per request: the
    // schedule falls behind by 30 ms per request. Request j cannot complete before
    // t0 + (j+1)·40 ms and was due at t0 + j·10 ms, so its corrected latency is at least
    // 40 + 30·j ms. A closed-loop measurement would report ~40 ms for all of them.
    let delay = Duration::from_millis(40);
    let (addr, _) = fake_server(delay, 200).await;
    let plan = LoadPlan {
        mode: Mode::Open {
            rate: 100.0,
            connections: 1,
        },
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        seed: 1,
    };
    let outcome = run_load(Arc::new(Target::from_addr(addr)), Arc::new(Get), &plan)
        .await
        .unwrap();
    let n = outcome.completed();
    assert!(n >= 2, "at least two requests in a second");
    // at most one request per 40 ms fits in the window (+1 in flight at the end)
    assert!(n <= 1000 / 40 + 1, "{n}");
    let l = Latency::of(&outcome.latency_us);
    assert!(l.min >= us(delay));
    let bound_ms = 40 + 30 * (n - 1);
    assert!(
        l.max >= bound_ms * 1_000,
        "max {} µs < {bound_ms} ms for {n} requests",
        l.max
    );
    // the median request waited behind about half of the others
    let median_bound_ms = 40 + 30 * ((n - 1) / 2);
    assert!(
        l.p50 as f64 >= median_bound_ms as f64 * 1_000.0 * 0.99,
        "p50 {}",
        l.p50
    );
    // 100 were due in the window; at most n were sent
    assert!(outcome.unsent >= 100 - n - 1, "unsent {}", outcome.unsent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_under_capacity_measures_service_time() {
    let delay = Duration::from_millis(5);
    let (addr, _) = fake_server(delay, 200).await;
    let plan = LoadPlan {
        mode: Mode::Open {
            rate: 40.0,
            connections: 2,
        },
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        seed: 1,
    };
    let outcome = run_load(Arc::new(Target::from_addr(addr)), Arc::new(Get), &plan)
        .await
        .unwrap();
    let n = outcome.completed();
    // 40/s for 0.5 s: 20 due in the window (one more per connection at the edges)
    assert!(n <= 22, "{n}");
    assert!(n + outcome.unsent <= 22);
    let l = Latency::of(&outcome.latency_us);
    assert!(n == 0 || l.min >= us(delay));
    assert!(outcome.send_lag_us.len() <= n + outcome.transport_errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_counted_not_hidden() {
    let (addr, _) = fake_server(Duration::from_millis(1), 503).await;
    let plan = LoadPlan {
        mode: Mode::Closed { concurrency: 1 },
        warmup: Duration::ZERO,
        duration: Duration::from_millis(200),
        seed: 1,
    };
    let outcome = run_load(Arc::new(Target::from_addr(addr)), Arc::new(Get), &plan)
        .await
        .unwrap();
    assert!(outcome.completed() >= 1);
    assert_eq!(outcome.ok, 0);
    assert_eq!(
        outcome.statuses.get(&503).copied(),
        Some(outcome.completed())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_200_and_gives_up_otherwise() {
    let (ok, _) = fake_server(Duration::ZERO, 200).await;
    wait_ready(&Target::from_addr(ok), Duration::from_secs(5), None)
        .await
        .unwrap();
    let (unavailable, _) = fake_server(Duration::ZERO, 503).await;
    let err = wait_ready(
        &Target::from_addr(unavailable),
        Duration::from_millis(200),
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn refused_connections_fail_the_run() {
    let addr = tessera_bench::harness::server::free_port().unwrap();
    let plan = LoadPlan {
        mode: Mode::Closed { concurrency: 1 },
        warmup: Duration::ZERO,
        duration: Duration::from_millis(100),
        seed: 1,
    };
    assert!(
        run_load(Arc::new(Target::from_addr(addr)), Arc::new(Get), &plan)
            .await
            .is_err()
    );
}
