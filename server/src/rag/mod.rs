//! The retrieval-augmented generation pipeline: extract → chunk → embed → store → retrieve → answer.

pub mod answer;
pub mod chunk;
pub mod embed;
pub mod extract;
pub mod pipeline;
pub mod store;
