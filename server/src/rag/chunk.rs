//! Fixed-size character chunks with overlap, cut on character boundaries (never inside a
//! multi-byte character) and, when possible, at white space near the end of the window.

/// Splits `text` into chunks of at most `size` characters, each starting `overlap` characters
/// before the previous one ended. `overlap < size` (checked by the configuration).
pub fn chunk_text(text: &str, size: usize, overlap: usize) -> Vec<String> {
    assert!(
        size > 0 && overlap < size,
        "chunk size must exceed the overlap"
    );
    let chars: Vec<char> = text.chars().collect();
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        // Skip leading white space so chunks do not start with blanks.
        while start < chars.len() && chars[start].is_whitespace() {
            start += 1;
        }
        if start >= chars.len() {
            break;
        }
        let mut end = (start + size).min(chars.len());
        if end < chars.len() {
            // Prefer to cut at white space within the last fifth of the window.
            let floor = start + size * 4 / 5;
            if let Some(ws) = (floor..end).rev().find(|&i| chars[i].is_whitespace()) {
                end = ws;
            }
        }
        let chunk: String = chars[start..end].iter().collect();
        let trimmed = chunk.trim_end();
        if !trimmed.is_empty() {
            chunks.push(trimmed.to_string());
        }
        if end >= chars.len() {
            break;
        }
        // Step forward, keeping `overlap` characters, but always make progress.
        start = end.saturating_sub(overlap).max(start + 1);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respects_size_and_overlap() {
        let text = "word ".repeat(500);
        let chunks = chunk_text(&text, 100, 20);
        assert!(chunks.len() > 20);
        for c in &chunks {
            assert!(c.chars().count() <= 100, "{}", c.len());
        }
        // Consecutive chunks overlap.
        let a = &chunks[0];
        let b = &chunks[1];
        assert!(a.ends_with(&b[..b.find(' ').unwrap()]) || a.contains(&b[..10]));
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let text = "日本語のテキスト🙂".repeat(100);
        let chunks = chunk_text(&text, 7, 2);
        assert!(chunks.iter().all(|c| c.chars().count() <= 7));
        let rebuilt: usize = chunks.len();
        assert!(rebuilt >= text.chars().count() / 5);
    }

    #[test]
    fn short_and_empty_text() {
        assert_eq!(chunk_text("hello", 1000, 200), vec!["hello"]);
        assert!(chunk_text("   \n ", 1000, 200).is_empty());
        assert!(chunk_text("", 10, 0).is_empty());
    }
}
