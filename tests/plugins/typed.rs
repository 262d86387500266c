//! A plugin for typed Python (issue 15): doc comments, recorded serde types,
//! a serde error. Built once per test session.

use serde::{Deserialize, Serialize};
use wasmforge_pdk::{plugin_fn, plugin_type};

/// Adds two numbers.
///
/// Wraps around on overflow, as `i32::wrapping_add` does.
#[plugin_fn]
pub fn add(one: i32, two: i32) -> i32 {
    one.wrapping_add(two)
}

/// One line of an order.
#[plugin_type]
#[derive(Serialize, Deserialize)]
pub struct Line {
    /// The stock-keeping unit.
    pub sku: String,
    pub quantity: u32,
    pub note: Option<String>,
}

/// An order: an id and its lines.
#[plugin_type]
#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub lines: Vec<Line>,
}

/// Why an order cannot be invoiced.
#[plugin_type]
#[derive(Serialize, Deserialize, Debug)]
pub enum InvoiceError {
    Empty,
    OutOfStock { sku: String, missing: u32 },
}

/// The total quantity of an order; an empty order or one asking for more
/// than 100 of anything is an `InvoiceError`.
#[plugin_fn]
pub fn invoice(order: Order) -> Result<u64, InvoiceError> {
    if order.lines.is_empty() {
        return Err(InvoiceError::Empty);
    }
    let mut total = 0u64;
    for line in &order.lines {
        if line.quantity > 100 {
            return Err(InvoiceError::OutOfStock { sku: line.sku.clone(), missing: line.quantity - 100 });
        }
        total += line.quantity as u64;
    }
    Ok(total)
}

/// The lines of an order, each with its note.
#[plugin_fn]
pub fn notes(orders: Vec<Order>, prefix: &str) -> Vec<String> {
    orders
        .iter()
        .flat_map(|o| o.lines.iter())
        .map(|l| format!("{}{}", prefix, l.note.clone().unwrap_or_default()))
        .collect()
}

/// A plain string error stays a message.
#[plugin_fn]
pub fn parse(text: &str) -> Result<u32, String> {
    text.parse::<u32>().map_err(|e| format!("{:?}: {}", text, e))
}
