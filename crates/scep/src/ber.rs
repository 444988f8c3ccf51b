//! BER to DER: re-encodes the BER freedoms some CMS producers use (indefinite lengths,
//! non-minimal lengths, constructed OCTET STRINGs and character strings) as DER, so the
//! strict DER decoders of the `der` crate can read the message.
//!
//! It does not reorder `SET OF` elements: the decoders sort them, and a signature over signed
//! attributes is defined over their DER encoding anyway (RFC 5652, section 5.4). Context-specific
//! constructed elements stay constructed, because without the schema an `[0] IMPLICIT OCTET
//! STRING` cannot be told from an `[0] EXPLICIT` wrapper; the one place CMS needs that
//! (`encryptedContent`) is handled by the envelope parser.

use thiserror::Error;

/// Nesting deeper than this is refused (a CMS message nests about a dozen levels).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("not BER-encoded ASN.1: {0}")]
pub(crate) struct BerError(&'static str);

/// Re-encodes one BER element (and everything inside it) as DER. Trailing bytes are an error.
pub(crate) fn to_der(input: &[u8]) -> Result<Vec<u8>, BerError> {
    let mut reader = Reader { input, pos: 0 };
    let element = reader.element(0)?;
    if reader.pos != input.len() {
        return Err(BerError("trailing bytes after the element"));
    }
    let mut out = Vec::with_capacity(input.len());
    element.write(&mut out);
    Ok(out)
}

/// A decoded element: a primitive keeps its content, a constructed one its children.
enum Element {
    Primitive { tag: u8, content: Vec<u8> },
    Constructed { tag: u8, children: Vec<Element> },
}

impl Element {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Element::Primitive { tag, content } => {
                out.push(*tag);
                write_length(out, content.len());
                out.extend_from_slice(content);
            }
            Element::Constructed { tag, children } => {
                let mut body = Vec::new();
                for child in children {
                    child.write(&mut body);
                }
                out.push(*tag);
                write_length(out, body.len());
                out.extend_from_slice(&body);
            }
        }
    }
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Universal string types that BER lets a sender split into constructed segments.
fn is_universal_string_type(number: u8) -> bool {
    matches!(
        number,
        0x04 // OCTET STRING
        | 0x0c // UTF8String
        | 0x12 // NumericString
        | 0x13 // PrintableString
        | 0x14 // TeletexString
        | 0x15 // VideotexString
        | 0x16 // IA5String
        | 0x17 // UTCTime
        | 0x18 // GeneralizedTime
        | 0x19 // GraphicString
        | 0x1a // VisibleString
        | 0x1b // GeneralString
        | 0x1c // UniversalString
        | 0x1e // BMPString
    )
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self.input.get(self.pos).ok_or(BerError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    /// `None` is the indefinite form.
    fn length(&mut self) -> Result<Option<usize>, BerError> {
        let first = self.byte()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else if first == 0x80 {
            return Ok(None);
        } else {
            let count = usize::from(first & 0x7f);
            if count > 4 {
                return Err(BerError("length too long"));
            }
            let mut len = 0usize;
            for _ in 0..count {
                len = (len << 8) | usize::from(self.byte()?);
            }
            len
        };
        if len > self.input.len() - self.pos {
            return Err(BerError("length runs past the end"));
        }
        Ok(Some(len))
    }

    fn at_end_of_contents(&self) -> bool {
        self.input.get(self.pos..self.pos + 2) == Some(&[0, 0])
    }

    fn element(&mut self, depth: usize) -> Result<Element, BerError> {
        if depth > MAX_DEPTH {
            return Err(BerError("nested too deeply"));
        }
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(BerError("high tag numbers are not used by SCEP"));
        }
        let constructed = tag & 0x20 != 0;
        let length = self.length()?;
        if !constructed {
            let len = length.ok_or(BerError("indefinite length on a primitive"))?;
            let content = self.input[self.pos..self.pos + len].to_vec();
            self.pos += len;
            return Ok(Element::Primitive { tag, content });
        }
        let mut children = Vec::new();
        match length {
            Some(len) => {
                let end = self.pos + len;
                let mut inner = Reader { input: &self.input[..end], pos: self.pos };
                while inner.pos < end {
                    children.push(inner.element(depth + 1)?);
                }
                self.pos = end;
            }
            None => loop {
                if self.at_end_of_contents() {
                    self.pos += 2;
                    break;
                }
                children.push(self.element(depth + 1)?);
            },
        }
        let is_universal = tag & 0xc0 == 0;
        if is_universal && is_universal_string_type(tag & 0x1f) {
            let primitive_tag = tag & !0x20;
            let mut content = Vec::new();
            flatten_string(&children, primitive_tag, &mut content)?;
            return Ok(Element::Primitive { tag: primitive_tag, content });
        }
        if is_universal && tag & 0x1f == 0x03 {
            return Err(BerError("constructed BIT STRING"));
        }
        Ok(Element::Constructed { tag, children })
    }
}

/// Concatenates the segments of a constructed string; each must be of the same string type.
fn flatten_string(children: &[Element], primitive_tag: u8, out: &mut Vec<u8>) -> Result<(), BerError> {
    for child in children {
        match child {
            Element::Primitive { tag, content } if *tag == primitive_tag => out.extend_from_slice(content),
            Element::Primitive { .. } => return Err(BerError("string segment of another type")),
            // Segments that were themselves constructed were flattened when they were read.
            Element::Constructed { .. } => return Err(BerError("string segment of another type")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_passes_through_unchanged() {
        // SEQUENCE { INTEGER 5, OCTET STRING "ab" }
        let der = [0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, b'a', b'b'];
        assert_eq!(to_der(&der).unwrap(), der);
    }

    #[test]
    fn indefinite_lengths_and_segmented_strings_become_der() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00, 0x00];
        assert_eq!(to_der(&ber).unwrap(), [0x30, 0x05, 0x04, 0x03, b'a', b'b', b'c']);
    }

    #[test]
    fn non_minimal_lengths_become_minimal() {
        let ber = [0x04, 0x81, 0x01, 0x41];
        assert_eq!(to_der(&ber).unwrap(), [0x04, 0x01, 0x41]);
    }

    #[test]
    fn long_contents_keep_a_long_length() {
        let mut ber = vec![0x24, 0x80];
        for _ in 0..3 {
            ber.extend_from_slice(&[0x04, 0x64]);
            ber.extend_from_slice(&[7u8; 100]);
        }
        ber.extend_from_slice(&[0, 0]);
        let der = to_der(&ber).unwrap();
        assert_eq!(&der[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(der.len(), 4 + 300);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(to_der(&[0x30, 0x05, 0x02]).is_err());
        assert!(to_der(&[0x04, 0x80, 0x00, 0x00]).is_err());
        assert!(to_der(&[0x30, 0x00, 0x00]).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], 100).flatten().collect();
        assert!(to_der(&deep).is_err());
    }
}
