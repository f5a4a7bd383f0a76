//! The retrieval-augmented generation pipeline: extract → chunk → embed → store → retrieve → answer.
//!
//! Outside services sit behind small traits ([`embed::Embedder`], [`vector::VectorStore`]), each
//! with an embedded default that needs no network.

pub mod answer;
pub mod chroma;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod pipeline;
pub mod providers;
pub mod vector;
pub mod worker;
