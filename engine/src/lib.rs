//! stub
mod filters;
pub mod template;
pub type Vars = serde_json::Map<String, serde_json::Value>;
