//! "serialize": serde_json writes a generated catalogue of about 20 MiB into a `Vec<u8>` made
//! small in one function (`new_buffer`) and grown, by serde_json's writes, in another
//! (`write_catalogue`): the "buffer grown elsewhere" pattern of hyper's and bytes' buffers. Five
//! passes; every buffer is kept (with the catalogue), so its final block is live at the end, at the site that last
//! resized it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Rng;

const PRODUCTS: usize = 36_000;
const PASSES: usize = 5;

#[derive(Serialize)]
struct Catalogue {
    name: String,
    generated_by: &'static str,
    products: Vec<Product>,
}

#[derive(Serialize)]
struct Product {
    id: u64,
    sku: String,
    name: String,
    description: String,
    price: f64,
    in_stock: bool,
    tags: Vec<String>,
    attributes: BTreeMap<String, String>,
    variants: Vec<Variant>,
}

#[derive(Serialize)]
struct Variant {
    code: String,
    colour: &'static str,
    weight_grams: u32,
    dimensions_mm: [u16; 3],
}

pub fn run() -> Box<dyn std::any::Any> {
    let catalogue = generate();
    let mut outputs = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        let mut buffer = new_buffer();
        write_catalogue(&mut buffer, &catalogue);
        outputs.push(buffer);
    }
    eprintln!(
        "serialize: {} products, {} passes of {} bytes (capacity {})",
        PRODUCTS,
        PASSES,
        outputs[0].len(),
        outputs[0].capacity()
    );
    Box::new((catalogue, outputs))
}

/// Makes the buffer, small: serde_json's writes grow it, in `write_catalogue`.
#[inline(never)]
fn new_buffer() -> Vec<u8> {
    Vec::with_capacity(256)
}

#[inline(never)]
fn write_catalogue(buffer: &mut Vec<u8>, catalogue: &Catalogue) {
    serde_json::to_writer(buffer, catalogue).expect("serializing into a Vec cannot fail");
}

fn generate() -> Catalogue {
    let mut rng = Rng::new(0x7365_7269);
    const COLOURS: &[&str] = &["black", "white", "red", "green", "blue", "graphite", "sand"];
    let products = (0..PRODUCTS as u64)
        .map(|id| {
            let n = 8 + rng.below(40) as usize;
            Product {
                id,
                sku: format!("SKU-{:08X}", rng.next() as u32),
                name: rng.words(3),
                description: rng.words(n),
                price: rng.below(100_000) as f64 / 100.0,
                in_stock: rng.below(4) != 0,
                tags: (0..rng.below(6))
                    .map(|_| rng.pick(super::WORDS).to_owned())
                    .collect(),
                attributes: (0..rng.below(5))
                    .map(|_| (rng.pick(super::WORDS).to_owned(), rng.words(2)))
                    .collect(),
                variants: (0..1 + rng.below(4))
                    .map(|v| Variant {
                        code: format!("{id}-{v}"),
                        colour: COLOURS[rng.below(COLOURS.len() as u64) as usize],
                        weight_grams: rng.below(5000) as u32,
                        dimensions_mm: [rng.below(900) as u16, rng.below(900) as u16, 10],
                    })
                    .collect(),
            }
        })
        .collect();
    Catalogue {
        name: "generated catalogue".to_owned(),
        generated_by: "tracealloc-accuracy",
        products,
    }
}
