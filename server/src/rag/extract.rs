//! File type detection and text extraction.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    Text,
    Markdown,
    Csv,
    Json,
    Html,
    Pdf,
    Docx,
}

impl FileType {
    pub const ALL: [FileType; 7] = [
        FileType::Text,
        FileType::Markdown,
        FileType::Csv,
        FileType::Json,
        FileType::Html,
        FileType::Pdf,
        FileType::Docx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Text => "text",
            FileType::Markdown => "markdown",
            FileType::Csv => "csv",
            FileType::Json => "json",
            FileType::Html => "html",
            FileType::Pdf => "pdf",
            FileType::Docx => "docx",
        }
    }

    pub fn parse(s: &str) -> Option<FileType> {
        FileType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn mime(self) -> &'static str {
        match self {
            FileType::Text => "text/plain",
            FileType::Markdown => "text/markdown",
            FileType::Csv => "text/csv",
            FileType::Json => "application/json",
            FileType::Html => "text/html",
            FileType::Pdf => "application/pdf",
            FileType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
        }
    }
}

/// The supported types, for error messages.
pub const SUPPORTED: &str = "plain text (.txt), Markdown (.md), CSV (.csv), JSON (.json), HTML (.html), PDF (.pdf), DOCX (.docx)";

/// Detects the type from the file name's extension, else from the declared content type.
pub fn detect(file_name: &str, content_type: Option<&str>) -> Option<FileType> {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("txt" | "text" | "log") => Some(FileType::Text),
        Some("md" | "markdown") => Some(FileType::Markdown),
        Some("csv") => Some(FileType::Csv),
        Some("json") => Some(FileType::Json),
        Some("html" | "htm") => Some(FileType::Html),
        Some("pdf") => Some(FileType::Pdf),
        Some("docx") => Some(FileType::Docx),
        _ => None,
    };
    by_ext.or_else(|| {
        let mime = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "text/plain" => Some(FileType::Text),
            "text/markdown" | "text/x-markdown" => Some(FileType::Markdown),
            "text/csv" => Some(FileType::Csv),
            "application/json" => Some(FileType::Json),
            "text/html" => Some(FileType::Html),
            "application/pdf" => Some(FileType::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(FileType::Docx)
            }
            _ => None,
        }
    })
}

/// Extracts plain text. Errors are reported on the document (status `failed`).
pub fn extract(kind: FileType, bytes: &[u8]) -> Result<String, String> {
    let text = match kind {
        FileType::Text | FileType::Markdown | FileType::Csv => decode_text(bytes),
        FileType::Json => {
            let value: serde_json::Value = serde_json::from_slice(strip_bom(bytes))
                .map_err(|e| format!("invalid JSON: {e}"))?;
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        }
        FileType::Html => html_to_text(&decode_text(bytes)),
        FileType::Pdf => pdf_text(bytes)?,
        FileType::Docx => docx_text(bytes)?,
    };
    if text.trim().is_empty() {
        return Err("the document contains no text".into());
    }
    Ok(text)
}

/// Text of a PDF (pdf-extract; it can panic on hostile files: callers contain panics).
fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(b"%PDF") {
        return Err("not a PDF file".into());
    }
    pdf_extract::extract_text_from_mem(bytes).map_err(|e| format!("unreadable PDF: {e}"))
}

/// Text of a DOCX: the runs of `word/document.xml`, one line per paragraph, tabs between table
/// cells. Entries larger than 100 MiB uncompressed are refused (zip bombs).
fn docx_text(bytes: &[u8]) -> Result<String, String> {
    use std::io::Read;
    const MAX_XML: u64 = 100 * 1024 * 1024;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a DOCX file: {e}"))?;
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| "not a DOCX file: word/document.xml is missing".to_string())?;
    let mut xml = String::new();
    entry
        .take(MAX_XML + 1)
        .read_to_string(&mut xml)
        .map_err(|e| format!("unreadable DOCX: {e}"))?;
    if xml.len() as u64 > MAX_XML {
        return Err("DOCX document too large".into());
    }
    Ok(wordprocessing_text(&xml))
}

/// Walks the WordprocessingML tags: text inside `<w:t>`, paragraph ends as new lines, `<w:tab/>`
/// and cell ends as tabs, `<w:br/>` as line breaks.
fn wordprocessing_text(xml: &str) -> String {
    let mut out = String::new();
    let mut in_text = false;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        if in_text {
            out.push_str(&decode_entities(&rest[..open]));
        }
        let Some(close) = rest[open..].find('>').map(|c| open + c) else {
            break;
        };
        let tag = &rest[open + 1..close];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let closing = tag.starts_with('/');
        let self_closing = tag.ends_with('/');
        match (name, closing) {
            ("w:t", false) => in_text = !self_closing,
            ("w:t", true) => in_text = false,
            ("w:p", true) => out.push('\n'),
            ("w:tab", false) | ("w:tc", true) => out.push('\t'),
            ("w:br", false) | ("w:cr", false) => out.push('\n'),
            _ => {}
        }
        rest = &rest[close + 1..];
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn decode_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(strip_bom(bytes)).into_owned()
}

/// Visible text of an HTML document: tags dropped, `<script>`/`<style>` contents skipped, block
/// elements turned into line breaks, common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let Some(close) = html[i..].find('>').map(|p| i + p) else {
                break;
            };
            let tag = lower[i + 1..close].trim_start_matches('/');
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if (name == "script" || name == "style") && !lower[i + 1..close].starts_with('/') {
                let end_tag = format!("</{name}");
                i = lower[close..]
                    .find(&end_tag)
                    .map(|p| close + p)
                    .unwrap_or(bytes.len());
                continue;
            }
            if matches!(
                name.as_str(),
                "p" | "br"
                    | "div"
                    | "li"
                    | "tr"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "section"
                    | "article"
                    | "table"
                    | "ul"
                    | "ol"
                    | "pre"
                    | "blockquote"
                    | "title"
            ) {
                out.push('\n');
            } else {
                out.push(' ');
            }
            i = close + 1;
        } else {
            let next = html[i..].find('<').map(|p| i + p).unwrap_or(bytes.len());
            out.push_str(&decode_entities(&html[i..next]));
            i = next;
        }
    }
    // Collapse runs of blanks within lines and of empty lines.
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_kinds_are_the_file_types() {
        assert_eq!(
            FileType::ALL.map(FileType::as_str),
            crate::models::DOCUMENT_KINDS,
            "models::DOCUMENT_KINDS (the OpenAPI enum of `kind`) lists every file type"
        );
        for kind in crate::models::DOCUMENT_KINDS {
            assert_eq!(FileType::parse(kind).map(FileType::as_str), Some(kind));
        }
        for t in FileType::ALL {
            assert_eq!(
                detect("upload", Some(t.mime())),
                Some(t),
                "{t:?} by its media type"
            );
        }
    }

    #[test]
    fn detects_by_extension_then_content_type() {
        assert_eq!(detect("notes.MD", None), Some(FileType::Markdown));
        assert_eq!(
            detect("report.pdf", Some("application/octet-stream")),
            Some(FileType::Pdf)
        );
        assert_eq!(
            detect("blob", Some("text/plain; charset=utf-8")),
            Some(FileType::Text)
        );
        assert_eq!(detect("image.png", Some("image/png")), None);
        assert_eq!(detect("archive.zip", None), None);
    }

    #[test]
    fn extracts_visible_html_text() {
        let html = "<html><head><title>T</title><style>p{color:red}</style><script>alert('x')</script></head>\
                    <body><p>Fish &amp; chips</p><div>cost &#36;5&nbsp;each</div></body></html>";
        let text = extract(FileType::Html, html.as_bytes()).unwrap();
        assert_eq!(text, "T\nFish & chips\ncost $5 each");
    }

    #[test]
    fn docx_paragraphs_runs_and_tables() {
        let xml = r#"<?xml version="1.0"?><w:document><w:body>
            <w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space="preserve"> world &amp; co</w:t></w:r></w:p>
            <w:p><w:r><w:t>Line</w:t><w:br/><w:t>two</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>A</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>B</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            <w:p><w:r><w:t/></w:r></w:p></w:body></w:document>"#;
        assert_eq!(
            wordprocessing_text(xml),
            "Hello world & co\nLine\ntwo\nA\n\tB"
        );
        assert!(
            extract(FileType::Docx, b"PK not really")
                .unwrap_err()
                .contains("not a DOCX")
        );
        assert!(
            extract(FileType::Pdf, b"hello")
                .unwrap_err()
                .contains("not a PDF")
        );
    }

    #[test]
    fn text_json_and_errors() {
        assert_eq!(
            extract(FileType::Text, b"\xEF\xBB\xBFhello").unwrap(),
            "hello"
        );
        assert!(
            extract(FileType::Json, b"{\"a\": \"b\"}")
                .unwrap()
                .contains("\"a\": \"b\"")
        );
        assert!(
            extract(FileType::Json, b"{oops")
                .unwrap_err()
                .contains("invalid JSON")
        );
        assert!(extract(FileType::Text, b"   ").is_err());
    }
}
