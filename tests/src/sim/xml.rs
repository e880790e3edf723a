//! A small namespace-aware element tree over quick-xml, enough to read OTA messages strictly:
//! lookups match the OTA namespace, so an element in another namespace counts as missing.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// The OpenTravel namespace all messages use.
pub(crate) const OTA_NS: &str = "http://www.opentravel.org/OTA/2003/05";

#[derive(Debug)]
pub(crate) struct Element {
    pub namespace: Option<String>,
    pub name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Whether this is the OTA element `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name == name && self.namespace.as_deref() == Some(OTA_NS)
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The OTA children called `name`.
    pub(crate) fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.is(name))
    }

    /// The first element down the path of OTA child names.
    pub(crate) fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut element = self;
        for name in names {
            element = element.children.iter().find(|child| child.is(name))?;
        }
        Some(element)
    }
}

/// Parses a whole document into its root element; any well-formedness error is an `Err`.
pub(crate) fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(|e| format!("malformed XML: {e}"))?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => Some(ns.0.to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => return Err(format!("unknown namespace prefix {prefix}")),
        };
        let text = match event {
            Event::Start(start) => {
                stack.push(element(namespace, &start)?);
                continue;
            }
            Event::Empty(start) => {
                let leaf = element(namespace, &start)?;
                close(&mut stack, &mut root, leaf)?;
                continue;
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unexpected end tag")?;
                close(&mut stack, &mut root, done)?;
                continue;
            }
            Event::Text(text) => text.xml10_content().into_owned(),
            Event::CData(data) => data.to_string(),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => c.to_string(),
                _ => resolve_predefined_entity(&reference).ok_or("unknown entity")?.to_owned(),
            },
            Event::Eof if stack.is_empty() => return root.ok_or_else(|| "empty document".to_owned()),
            Event::Eof => return Err("unexpected end of document".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
        };
        match stack.last_mut() {
            Some(open) => open.text.push_str(&text),
            None if text.trim().is_empty() => {}
            None => return Err("text outside the root element".into()),
        }
    }
}

fn element(namespace: Option<String>, start: &BytesStart<'_>) -> Result<Element, String> {
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("malformed attribute: {e}"))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attribute.normalized_value(XmlVersion::Implicit1_0).map_err(|e| format!("bad attribute: {e}"))?;
        attributes.push((attribute.key.local_name().as_ref().to_owned(), value.into_owned()));
    }
    let name = start.local_name().as_ref().to_owned();
    Ok(Element { namespace, name, attributes, children: Vec::new(), text: String::new() })
}

/// Attaches a finished element to its parent, or makes it the root.
fn close(stack: &mut [Element], root: &mut Option<Element>, done: Element) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(done),
        None if root.is_none() => *root = Some(done),
        None => return Err("more than one root element".into()),
    }
    Ok(())
}

/// Escapes text or an attribute value for the answers we write.
pub(crate) fn esc(value: &str) -> std::borrow::Cow<'_, str> {
    escape(value)
}
