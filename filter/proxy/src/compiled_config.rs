//! Reads the compiled policy from a plugin configuration `{"compiledPolicy": "<base64>"}` in
//! chunks, decoding the base64 as it goes: a VM never holds the configuration's text and the
//! compiled form at once (at 100,000 services of the benchmark, 1.2 MB and 0.9 MB, the tables
//! compressed), and the compiled form's buffer
//! is sized once from its header instead of growing by doubling.

use base64::Engine as _;
use warden_bundle::wire::COMPILED_POLICY;
use warden_engine::compact;

use crate::host::Host;

/// Bytes read per host call: a multiple of 4 (whole base64 quanta).
const CHUNK: usize = 256 * 1024;
/// Enough of the configuration to see where the base64 text starts.
const HEAD: usize = 128;

/// Where the base64 text of `{"compiledPolicy": "` starts in `head` (JSON whitespace allowed
/// around the tokens, as any JSON writer may put it), or `None` for another configuration.
fn text_start(head: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut token = |expected: &[u8]| -> Option<()> {
        while head.get(at).is_some_and(|b| b" \t\r\n".contains(b)) {
            at += 1;
        }
        let end = at + expected.len();
        (head.get(at..end)? == expected).then(|| at = end)
    };
    token(b"{")?;
    token(format!("\"{COMPILED_POLICY}\"").as_bytes())?;
    token(b":")?;
    token(b"\"")?;
    Some(at)
}

/// Whether `tail` closes the object: whitespace, `}`, whitespace.
fn closes(tail: &[u8]) -> bool {
    let tail = tail.trim_ascii();
    tail == b"}"
}

fn decode(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    base64::engine::general_purpose::STANDARD
        .decode_vec(text, out)
        .map_err(|e| format!("compiledPolicy is not base64: {e}"))
}

/// The compiled form when the configuration is `{"compiledPolicy": "<base64>"}` written
/// without escapes (as `render` writes it); `None` for any other configuration, which is then
/// read whole. `size` is the configuration's length (from `on_configure`), if known: the
/// buffer reserved from the header never exceeds what the text can decode to.
pub(crate) fn read(host: &dyn Host, size: Option<usize>) -> Option<Result<Vec<u8>, String>> {
    let head = host.plugin_configuration_range(0, HEAD)?;
    let start = text_start(&head)?;
    Some(read_text(host, start, size))
}

fn read_text(host: &dyn Host, start: usize, size: Option<usize>) -> Result<Vec<u8>, String> {
    let mut decoded: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = start;
    let mut reserved = false;
    loop {
        let chunk = host
            .plugin_configuration_range(offset, CHUNK)
            .filter(|c| !c.is_empty())
            .ok_or("compiledPolicy: the configuration ends inside the string")?;
        offset += chunk.len();
        let end = chunk.iter().position(|&b| b == b'"');
        pending.extend_from_slice(chunk.get(..end.unwrap_or(chunk.len())).unwrap_or_default());
        let whole = if end.is_some() {
            pending.len()
        } else {
            pending.len() / 4 * 4
        };
        decode(pending.get(..whole).unwrap_or_default(), &mut decoded)?;
        pending.drain(..whole);
        if !reserved {
            reserved = true;
            // One allocation of the right size: no doubling, whose copy would hold the old
            // and the new buffer at once.
            let bound = size.map_or(usize::MAX, |s| s / 4 * 3 + 3);
            if let Some(total) = compact::expected_len(&decoded).filter(|&t| t <= bound) {
                decoded.reserve_exact(total.saturating_sub(decoded.len()));
            }
        }
        let Some(end) = end else {
            continue;
        };
        let mut tail = chunk.get(end + 1..).unwrap_or_default().to_vec();
        while let Some(more) = host
            .plugin_configuration_range(offset, CHUNK)
            .filter(|c| !c.is_empty())
        {
            offset += more.len();
            tail.extend_from_slice(&more);
            if tail.len() > HEAD {
                break;
            }
        }
        if !closes(&tail) {
            return Err("compiledPolicy: something other than the end of the object follows the string (expected {\"compiledPolicy\": \"<base64>\"})".into());
        }
        return Ok(decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_of_the_text_is_found_with_any_json_whitespace() {
        assert_eq!(text_start(br#"{"compiledPolicy":"V0FS"#), Some(19));
        assert_eq!(text_start(b"{ \"compiledPolicy\" :\n \"V0FS"), Some(23));
        assert_eq!(text_start(br#"{"embeddedBundle":"sha256:"#), None);
        assert_eq!(text_start(br#"{"apiVersion":"warden.dev/v1alpha1"#), None);
        assert_eq!(text_start(b"{"), None);
        assert!(closes(b"}") && closes(b" }\n") && !closes(b", \"x\": 1}") && !closes(b""));
    }
}
