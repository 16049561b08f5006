//! Bounds on a JSON body's shape, checked on the raw bytes before anything is built from
//! them: how deep values nest and how many items one array holds. A body within the size
//! limit can still nest ten thousand levels deep (which a recursive parser refuses only
//! after walking down) or hold a hundred thousand tiny items (each of which becomes a
//! value before any rule counts them); this scan refuses both at once, in constant memory
//! beyond the path it reports, naming the field where the bound was passed.

/// The deepest nesting of objects and arrays a body may have.
pub const MAX_DEPTH: usize = 32;
/// The most items one array may hold; endpoints set their own, lower bounds after this.
pub const MAX_ARRAY_ITEMS: usize = 10_000;

/// Where a body passes a bound: the field (`items[3].value`, `.` for the body itself), a
/// code (`depth` or `length`) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

enum Frame {
    /// An object; the key being read or last read.
    Object(Option<String>),
    /// An array; the number of items begun so far.
    Array(usize),
}

/// Scans `body` for nesting deeper than `max_depth` or an array longer than `max_items`.
/// Malformed JSON passes: the parser that follows names what is wrong with it.
pub fn check(body: &[u8], max_depth: usize, max_items: usize) -> Result<(), ShapeError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    // Whether the next string in an object is a key.
    let mut expect_key = false;
    while i < body.len() {
        let b = body[i];
        match b {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if expect_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let raw = &body[start..i.min(body.len())];
                        *key = Some(String::from_utf8_lossy(raw).into_owned());
                    }
                    expect_key = false;
                } else {
                    begin_item(&mut stack, max_items)?;
                }
            }
            b'{' | b'[' => {
                begin_item(&mut stack, max_items)?;
                if stack.len() >= max_depth {
                    return Err(ShapeError {
                        field: path(&stack),
                        code: "depth",
                        message: format!("nests deeper than {max_depth} levels"),
                    });
                }
                if b == b'{' {
                    stack.push(Frame::Object(None));
                    expect_key = true;
                } else {
                    stack.push(Frame::Array(0));
                }
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => {
                expect_key = matches!(stack.last(), Some(Frame::Object(_)));
            }
            b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
            _ => {
                // A number, `true`, `false` or `null`: one item, read to its end.
                begin_item(&mut stack, max_items)?;
                while i + 1 < body.len()
                    && !matches!(
                        body[i + 1],
                        b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    i += 1;
                }
            }
        }
        i += 1;
    }
    Ok(())
}

/// Counts a value begun inside an array.
fn begin_item(stack: &mut [Frame], max_items: usize) -> Result<(), ShapeError> {
    let Some((Frame::Array(count), outer)) = stack.split_last_mut() else {
        return Ok(());
    };
    *count += 1;
    if *count > max_items {
        return Err(ShapeError {
            field: path(outer),
            code: "length",
            message: format!("holds more than {max_items} items"),
        });
    }
    Ok(())
}

/// The field the frames lead to, as the parser's errors name fields: `items[3].value`.
fn path(frames: &[Frame]) -> String {
    let mut out = String::new();
    for frame in frames {
        match frame {
            Frame::Object(Some(key)) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(count) => out.push_str(&format!("[{}]", count.saturating_sub(1))),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn ordinary_bodies_pass() {
        for body in [
            r#"{"items":[{"subject_id":"a","purpose":"analytics"}],"x":[1,2,{"y":"[[[["}]}"#,
            r#"{"s":"a \" ] } [ {","n":-1.5e3,"t":true,"f":null}"#,
            "[]",
            "{}",
            "",
            "not json [[[",
        ] {
            assert_eq!(check(body.as_bytes(), 4, 3), Ok(()), "{body}");
        }
        assert_eq!(check(nested(MAX_DEPTH).as_bytes(), MAX_DEPTH, 10), Ok(()));
    }

    #[test]
    fn nesting_past_the_bound_names_where() {
        let err = check(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH, 10).unwrap_err();
        assert_eq!(err.code, "depth");
        assert!(err.field.starts_with("[0][0]"), "{err:?}");
        let body = r#"{"attributes":{"a":{"value":[[1,[[[]]]]]}}}"#;
        let err = check(body.as_bytes(), 5, 10).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("attributes.a.value[0][1]", "depth")
        );
        // Ten thousand levels: refused at the bound, never walked down.
        let deep = nested(10_000);
        assert_eq!(
            check(deep.as_bytes(), MAX_DEPTH, 10).unwrap_err().code,
            "depth"
        );
    }

    #[test]
    fn arrays_past_the_bound_name_the_array() {
        let err = check(br#"{"items":[1,2,3,4]}"#, 8, 3).unwrap_err();
        assert_eq!((err.field.as_str(), err.code), ("items", "length"));
        let err = check(br#"{"a":[{"b":["x","y","z","w"]}]}"#, 8, 3).unwrap_err();
        assert_eq!(err.field, "a[0].b");
        let err = check(br#"[{},{},{},{}]"#, 8, 3).unwrap_err();
        assert_eq!(err.field, ".");
        assert_eq!(
            check(br#"{"items":[1,2,3],"more":[[],[],[]]}"#, 8, 3),
            Ok(())
        );
    }
}
