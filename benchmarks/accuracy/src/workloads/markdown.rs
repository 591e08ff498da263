//! "markdown": pulldown-cmark renders about 1 MB of generated CommonMark (headings, paragraphs
//! with emphasis, code and links, lists, tables, block quotes, fenced code) to HTML 20 times,
//! keeping every rendering (24 MiB or so live at the end, like a cache of rendered pages).

use pulldown_cmark::{Options, Parser, html};

use super::Rng;

const TARGET_BYTES: usize = 1_000_000;
const RENDERS: usize = 20;

pub fn run() -> Box<dyn std::any::Any> {
    let input = generate(TARGET_BYTES);
    let mut rendered = Vec::with_capacity(RENDERS);
    for _ in 0..RENDERS {
        rendered.push(render(&input));
    }
    let bytes: usize = rendered.iter().map(String::len).sum();
    eprintln!(
        "markdown: {} bytes in, {} renders, {} bytes of HTML",
        input.len(),
        RENDERS,
        bytes
    );
    Box::new(rendered)
}

#[inline(never)]
fn render(input: &str) -> String {
    let parser = Parser::new_ext(
        input,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

fn inline_text(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        let w = rng.pick(super::WORDS);
        match rng.below(14) {
            0 => s.push_str(&format!("*{w}*")),
            1 => s.push_str(&format!("**{w}**")),
            2 => s.push_str(&format!("`{w}()`")),
            3 => s.push_str(&format!(
                "[{w}](https://example.com/{w}/{})",
                rng.below(1000)
            )),
            4 => s.push_str(&format!("~~{w}~~")),
            5 => s.push_str(&format!("{w} &amp; <{w}>")),
            _ => s.push_str(w),
        }
    }
    s
}

fn generate(target: usize) -> String {
    let mut rng = Rng::new(0x6d61_726b);
    let mut doc = String::with_capacity(target + 4096);
    let mut section = 0;
    while doc.len() < target {
        section += 1;
        doc.push_str(&format!("## Section {section}: {}\n\n", rng.words(4)));
        for _ in 0..1 + rng.below(3) {
            let n = 20 + rng.below(60) as usize;
            doc.push_str(&inline_text(&mut rng, n));
            doc.push_str("\n\n");
        }
        match rng.below(5) {
            0 => {
                for i in 0..3 + rng.below(6) {
                    let n = 3 + rng.below(10) as usize;
                    doc.push_str(&format!("{}. {}\n", i + 1, inline_text(&mut rng, n)));
                    if rng.below(3) == 0 {
                        let n = 3 + rng.below(6) as usize;
                        doc.push_str(&format!("    - {}\n", inline_text(&mut rng, n)));
                    }
                }
                doc.push('\n');
            }
            1 => {
                doc.push_str("| name | size | note |\n|---|---:|---|\n");
                for _ in 0..3 + rng.below(10) {
                    let n = 2 + rng.below(6) as usize;
                    doc.push_str(&format!(
                        "| {} | {} | {} |\n",
                        rng.pick(super::WORDS),
                        rng.below(1 << 20),
                        inline_text(&mut rng, n)
                    ));
                }
                doc.push('\n');
            }
            2 => {
                doc.push_str("```rust\n");
                for _ in 0..3 + rng.below(12) {
                    doc.push_str(&format!(
                        "let {} = {}::new({});\n",
                        rng.pick(super::WORDS),
                        rng.pick(super::WORDS),
                        rng.below(4096)
                    ));
                }
                doc.push_str("```\n\n");
            }
            3 => {
                let n = 10 + rng.below(30) as usize;
                doc.push_str(&format!(
                    "> {}\n>\n> {}\n\n",
                    inline_text(&mut rng, n),
                    rng.words(6)
                ));
            }
            _ => {
                for _ in 0..2 + rng.below(8) {
                    let n = 2 + rng.below(12) as usize;
                    doc.push_str(&format!("- {}\n", inline_text(&mut rng, n)));
                }
                doc.push('\n');
            }
        }
    }
    doc
}
