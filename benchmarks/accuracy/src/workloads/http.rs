//! "http": a hyper 1.x HTTP/1.1 server and client on 127.0.0.1, on one current-thread tokio
//! runtime. Four client connections (keep-alive) send 1,000 JSON requests each, concurrently; the
//! server parses each body with serde_json and answers with a quote of about 8 KiB of JSON, which
//! the client collects, parses and keeps (the quotes are live at the end). The server stops when the clients are done; a 60 s bound stops
//! the whole run if something hangs.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use super::Rng;

const CONNECTIONS: u64 = 4;
const REQUESTS_PER_CONNECTION: u64 = 1_000;

#[derive(Serialize, Deserialize)]
struct Order {
    customer: String,
    items: Vec<OrderItem>,
    note: String,
}

#[derive(Serialize, Deserialize)]
struct OrderItem {
    sku: String,
    quantity: u32,
}

#[derive(Serialize, Deserialize)]
struct Quote {
    customer: String,
    lines: Vec<QuoteLine>,
    total_cents: u64,
    terms: String,
}

#[derive(Serialize, Deserialize)]
struct QuoteLine {
    sku: String,
    description: String,
    quantity: u32,
    unit_cents: u64,
    warehouse: String,
}

pub fn run() -> Box<dyn std::any::Any> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (requests, bytes, quotes) = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), serve_and_call())
            .await
            .expect("the http workload finished within 60 s")
    });
    drop(runtime);
    eprintln!("http: {requests} requests, {bytes} response bytes");
    Box::new(quotes)
}

async fn serve_and_call() -> (u64, u64, Vec<Quote>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| tokio::spawn(client(addr, c)))
        .collect();
    let (mut requests, mut bytes, mut quotes) = (0, 0, Vec::new());
    for c in clients {
        let (r, b, q) = c.await.expect("client task");
        requests += r;
        bytes += b;
        quotes.extend(q);
    }
    server.abort();
    (requests, bytes, quotes)
}

async fn client(addr: std::net::SocketAddr, connection: u64) -> (u64, u64, Vec<Quote>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let mut rng = Rng::new(0x6874_7470 + connection);
    let (mut bytes, mut quotes) = (0, Vec::new());
    for i in 0..REQUESTS_PER_CONNECTION {
        let order = Order {
            customer: format!("customer-{connection}-{i}"),
            items: (0..1 + rng.below(8))
                .map(|_| OrderItem {
                    sku: format!("SKU-{:06}", rng.below(1_000_000)),
                    quantity: 1 + rng.below(9) as u32,
                })
                .collect(),
            note: rng.words(12),
        };
        let body = serde_json::to_vec(&order).unwrap();
        let request = Request::post("/quote")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.expect("a response");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        bytes += body.len() as u64;
        let quote: Quote = serde_json::from_slice(&body).expect("a quote");
        assert_eq!(quote.customer, order.customer);
        quotes.push(quote);
    }
    drop(sender);
    let _ = conn.await;
    (REQUESTS_PER_CONNECTION, bytes, quotes)
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let order: Order = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(_) => {
            return Ok(Response::builder()
                .status(400)
                .body(Full::default())
                .unwrap());
        }
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(quote(&order))))
        .unwrap())
}

/// About 8 KiB of JSON per order: its lines, each repeated over warehouses.
fn quote(order: &Order) -> Vec<u8> {
    let mut rng = Rng::new(order.customer.len() as u64 * 31 + order.items.len() as u64);
    let mut lines = Vec::new();
    while lines.len() < 40 {
        for item in &order.items {
            lines.push(QuoteLine {
                sku: item.sku.clone(),
                description: rng.words(10),
                quantity: item.quantity,
                unit_cents: 100 + rng.below(100_000),
                warehouse: format!("warehouse-{}", lines.len()),
            });
        }
    }
    let total_cents = lines.iter().map(|l| l.unit_cents * l.quantity as u64).sum();
    let quote = Quote {
        customer: order.customer.clone(),
        lines,
        total_cents,
        terms: order.note.clone(),
    };
    serde_json::to_vec(&quote).unwrap()
}
