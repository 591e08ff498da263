//! "index": tantivy indexes 40,000 generated documents (title, body, a u64 id) into an index in
//! RAM with one indexing thread and merges off, commits, and runs a few queries; the index (its segments in RAM) is live at the end. One indexing
//! thread and no merges keep the work the same from run to run.

use tantivy::collector::{Count, TopDocs};
use tantivy::merge_policy::NoMergePolicy;
use tantivy::query::QueryParser;
use tantivy::schema::{FAST, INDEXED, STORED, Schema, TEXT};
use tantivy::{Index, IndexWriter, TantivyDocument, doc};

use super::Rng;

const DOCUMENTS: u64 = 40_000;

pub fn run() -> Box<dyn std::any::Any> {
    let mut schema = Schema::builder();
    let title = schema.add_text_field("title", TEXT | STORED);
    let body = schema.add_text_field("body", TEXT);
    let id = schema.add_u64_field("id", INDEXED | STORED | FAST);
    let index = Index::create_in_ram(schema.build());
    let mut writer: IndexWriter<TantivyDocument> = index
        .writer_with_num_threads(1, 50_000_000)
        .expect("an index writer");
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let mut rng = Rng::new(0x696e_6465);
    for i in 0..DOCUMENTS {
        let n = 30 + rng.below(120) as usize;
        writer
            .add_document(doc!(title => rng.words(5), body => rng.words(n), id => i))
            .expect("add a document");
    }
    writer.commit().expect("commit");
    writer.wait_merging_threads().expect("no merges");
    let reader = index.reader().expect("a reader");
    let searcher = reader.searcher();
    let parser = QueryParser::for_index(&index, vec![title, body]);
    let mut hits = 0;
    for q in [
        "allocation",
        "heap AND profile",
        "\"stack frame\"",
        "sample OR estimate",
        "title:realloc",
    ] {
        let query = parser.parse_query(q).expect("a query");
        let (top, count) = searcher
            .search(&query, &(TopDocs::with_limit(10).order_by_score(), Count))
            .expect("a search");
        hits += count;
        std::hint::black_box(top);
    }
    eprintln!("index: {DOCUMENTS} documents, {hits} hits");
    Box::new((index, reader))
}
