//! A service that serves its own heap profile, as a fleet's continuous profiler scrapes it:
//!
//! - `/debug/pprof/heap`: the live heap now (`tracealloc::pprof_heap()`);
//! - `/debug/pprof/heap/growth`: what grew since start-up (`pprof_heap_growth`), the profile a
//!   fleet's continuous profiler scrapes to watch each process's growth;
//! - `/debug/pprof/heap/baseline`: the heap as it was at start-up, for
//!   `go tool pprof -diff_base=http://HOST/debug/pprof/heap/baseline http://HOST/debug/pprof/heap`;
//! - `/leak?kib=N`: leaks N KiB through `leaky_cache`, for trying it out.
//!
//! Run: `cargo run --release -p tracealloc-pprof-service -- 127.0.0.1:6060` (port 0 picks a free
//! one); it prints `listening on ADDRESS`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

#[global_allocator]
static ALLOC: tracealloc::Profiler = tracealloc::Profiler::system();

/// What the service keeps: the bug it demonstrates.
#[derive(Default)]
struct State {
    cache: Mutex<Vec<Vec<u8>>>,
    baseline: Vec<u8>,
    start: Option<tracealloc::Snapshot>,
}

#[inline(never)]
fn leaky_cache(state: &State, kib: usize) {
    let mut cache = state.cache.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..kib {
        cache.push(vec![1u8; 1024]);
    }
}

fn respond(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let profile = |bytes: Vec<u8>| {
        Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(bytes)))
    };
    let response = match request.uri().path() {
        "/debug/pprof/heap" => profile(tracealloc::pprof_heap()),
        "/debug/pprof/heap/baseline" => profile(state.baseline.clone()),
        "/debug/pprof/heap/growth" => match &state.start {
            Some(start) => profile(tracealloc::pprof_heap_growth(start)),
            None => profile(Vec::new()),
        },
        "/leak" => {
            let kib = request
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("kib="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            leaky_cache(state, kib);
            Response::builder().body(Full::new(Bytes::from(format!("leaked {kib} KiB\n"))))
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found\n"))),
    };
    response.unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"error\n"))))
}

fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6060".to_owned());
    let state = Arc::new(State {
        baseline: tracealloc::pprof_heap(),
        start: Some(tracealloc::snapshot()),
        ..State::default()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = respond(&state, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
