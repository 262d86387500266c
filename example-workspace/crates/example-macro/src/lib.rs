//! `#[plugin_fn]`: turns an ordinary Rust function into a wasmforge plugin export.
//!
//! For `pub fn f(...)` the attribute keeps `f` as written (so native Rust code,
//! like the runner crate, calls it directly) and adds:
//! - `__wf_call_f(&[u8]) -> Outcome`: decodes the arguments, calls `f`, encodes
//!   the result; the same glue runs natively and in wasm (for a lone `Vec<u8>` or
//!   `String` argument the wasm export uses `__wf_own_f(Vec<u8>)`, which takes the
//!   input bytes as the argument instead of copying them);
//! - on wasm32, an export named `f`: with the native wasm signature when every
//!   argument and the result are plain numbers, else the buffer convention;
//! - a JSON record of the signature (with the `///` doc comment) in the
//!   `wasmforge.exports` custom section, which the host reads to check calls,
//!   convert values and show signatures and docs in Python.
//!
//! `#[plugin_type]` on a serde struct or enum records its fields the same way,
//! so the host can show them, check dicts before a call and write typed stubs.
//! The wire contract is docs/ABI.md in wasmforge.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ForeignItem, GenericArgument, ItemFn, ItemForeignMod, Pat, PathArguments, ReturnType, Type};

/// Wire contract version; keep in step with wasmforge_pdk::WIRE_VERSION.
const WIRE_VERSION: u32 = 1;
/// The version of `type` records: hosts that know only v1 refuse them with
/// "upgrade wasmforge" instead of misreading them (docs/ABI.md, "Versioning").
const TYPE_RECORD_VERSION: u32 = 2;
/// The version of records of `wire = "msgpack"` functions: hosts that know only
/// JSON refuse them with "upgrade wasmforge" instead of sending JSON to them.
const MSGPACK_RECORD_VERSION: u32 = 3;

/// Names the host or the guest runtime already use.
const RESERVED_NAMES: &[&str] = &["memory", "main", "_start", "_initialize"];

#[proc_macro_attribute]
pub fn plugin_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    let msgpack = match wire_option(TokenStream2::from(attr)) {
        Ok(msgpack) => msgpack,
        Err(error) => return error.to_compile_error().into(),
    };
    let function = syn::parse_macro_input!(item as ItemFn);
    match expand(&function, msgpack) {
        Ok(glue) => quote!(#function #glue).into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error).into()
        }
    }
}

/// The one option `#[plugin_fn]` takes: `wire = "msgpack"` (or `wire = "json"`, the
/// default). True for MessagePack. Read from the tokens, so syn 1 and 2 both work.
fn wire_option(attr: TokenStream2) -> syn::Result<bool> {
    if attr.is_empty() {
        return Ok(false);
    }
    let tokens: Vec<proc_macro2::TokenTree> = attr.clone().into_iter().collect();
    if let [proc_macro2::TokenTree::Ident(key), proc_macro2::TokenTree::Punct(eq), literal] = tokens.as_slice() {
        if key == "wire" && eq.as_char() == '=' {
            if let Ok(text) = syn::parse2::<syn::LitStr>(literal.to_token_stream()) {
                match text.value().as_str() {
                    "msgpack" => return Ok(true),
                    "json" => return Ok(false),
                    _ => {}
                }
            }
        }
    }
    Err(syn::Error::new_spanned(
        attr,
        "#[plugin_fn] takes only `wire = \"msgpack\"` (or `wire = \"json\"`, the default)",
    ))
}

/// `#[plugin_type]` on a serde struct or enum records its fields (names, Rust
/// types, whether each is required, doc comments) in the `wasmforge.exports`
/// section, so the Python host shows them in signatures, checks a dict for a
/// missing field before the call enters wasm, and writes a `TypedDict` for it
/// in `wasmforge stubs`. The item itself is left exactly as written.
#[proc_macro_attribute]
pub fn plugin_type(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments(attr, "#[plugin_type]") {
        return error;
    }
    let original = TokenStream2::from(item.clone());
    let input = syn::parse_macro_input!(item as syn::DeriveInput);
    let record = match type_record(&input) {
        Ok(record) => record,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#original #error).into();
        }
    };
    let line = format!("{}\n", record);
    let record_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let record_len = line.len();
    let record_static = format_ident!("__WF_TYPE_RECORD_{}", input.ident);
    quote!(
        #original

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[link_section = "wasmforge.exports"]
        #[used]
        static #record_static: [u8; #record_len] = *#record_bytes;
    )
    .into()
}

/// One JSON object describing a struct or enum (docs/ABI.md, "Type records").
/// The compile error for arguments given to an attribute that takes none (`what`: `#[host_fn]`).
fn refuse_arguments(attr: TokenStream, what: &str) -> Option<TokenStream> {
    if attr.is_empty() {
        return None;
    }
    let message = format!("{} takes no arguments", what);
    Some(syn::Error::new_spanned(TokenStream2::from(attr), message).to_compile_error().into())
}

fn type_record(input: &syn::DeriveInput) -> syn::Result<String> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&input.generics, "#[plugin_type] types cannot be generic"));
    }
    // serde attributes (rename, default, flatten, tag...) change the JSON shape:
    // the host then shows the fields but does not check a dict against them.
    let checked = !has_serde_attr(&input.attrs);
    let body = match &input.data {
        syn::Data::Struct(data) => format!("\"shape\":\"struct\",\"fields\":{}", fields_json(&data.fields)),
        syn::Data::Enum(data) => {
            let variants: Vec<String> = data
                .variants
                .iter()
                .map(|variant| {
                    format!(
                        "{{\"name\":\"{}\",\"fields\":{},\"doc\":\"{}\"}}",
                        escape(&variant.ident.to_string()),
                        fields_json(&variant.fields),
                        escape(&doc_text(&variant.attrs))
                    )
                })
                .collect();
            format!("\"shape\":\"enum\",\"variants\":[{}]", variants.join(","))
        }
        syn::Data::Union(data) => {
            return Err(syn::Error::new_spanned(data.union_token, "#[plugin_type] goes on serde structs and enums"))
        }
    };
    Ok(format!(
        "{{\"v\":{},\"kind\":\"type\",\"name\":\"{}\",\"doc\":\"{}\",\"checked\":{},{}}}",
        TYPE_RECORD_VERSION,
        escape(&input.ident.to_string()),
        escape(&doc_text(&input.attrs)),
        checked,
        body
    ))
}

/// `[{"name","type","required","doc"}]` for named fields, `["T", ...]` for a
/// tuple struct or variant, `null` for a unit one.
fn fields_json(fields: &syn::Fields) -> String {
    match fields {
        syn::Fields::Named(named) => {
            let each: Vec<String> = named
                .named
                .iter()
                .map(|field| {
                    let name = field.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                    let optional = last_segment(&field.ty).map_or(false, |s| s.ident == "Option");
                    format!(
                        "{{\"name\":\"{}\",\"type\":\"{}\",\"required\":{},\"checked\":{},\"doc\":\"{}\"}}",
                        escape(name.trim_start_matches("r#")),
                        escape(&type_text(&field.ty)),
                        !optional,
                        !has_serde_attr(&field.attrs),
                        escape(&doc_text(&field.attrs))
                    )
                })
                .collect();
            format!("[{}]", each.join(","))
        }
        syn::Fields::Unnamed(unnamed) => {
            let each: Vec<String> =
                unnamed.unnamed.iter().map(|field| format!("\"{}\"", escape(&type_text(&field.ty)))).collect();
            format!("[{}]", each.join(","))
        }
        syn::Fields::Unit => "null".to_string(),
    }
}

/// Whether `#[serde(...)]` is among the attributes (read from the tokens, as doc_text does).
fn has_serde_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| match attr.to_token_stream().into_iter().last() {
        Some(proc_macro2::TokenTree::Group(group)) => {
            matches!(group.stream().into_iter().next(), Some(proc_macro2::TokenTree::Ident(ident)) if ident == "serde")
        }
        _ => false,
    })
}

/// `#[plugin_state]` on `static NAME: State<T> = State::new();` makes the
/// state survive hot reloads: it exports `__wf_state_save` (the state as JSON)
/// and `__wf_state_restore` (JSON in, status 2 when it does not fit `T`), which
/// the host calls around a swap, and records `{"kind":"state"}` in the
/// metadata. One per plugin.
#[proc_macro_attribute]
pub fn plugin_state(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments(attr, "#[plugin_state]") {
        return error;
    }
    let original = TokenStream2::from(item.clone());
    let item = syn::parse_macro_input!(item as syn::ItemStatic);
    let name = &item.ident;
    let line = format!(
        "{{\"v\":{},\"kind\":\"state\",\"name\":\"{}\",\"type\":\"{}\"}}\n",
        TYPE_RECORD_VERSION,
        escape(&name.to_string()),
        escape(&type_text(&item.ty))
    );
    let record_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let record_len = line.len();
    quote!(
        #original

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[link_section = "wasmforge.exports"]
        #[used]
        static __WF_STATE_RECORD: [u8; #record_len] = *#record_bytes;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[export_name = "__wf_state_save"]
        pub extern "C" fn __wf_state_save_export(ptr: *mut u8, len: usize) -> *const u32 {
            fn glue(_input: &[u8]) -> ::wasmforge_pdk::__private::Outcome {
                #name.__save()
            }
            ::wasmforge_pdk::__private::call_buffer(ptr, len, glue)
        }

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[export_name = "__wf_state_restore"]
        pub extern "C" fn __wf_state_restore_export(ptr: *mut u8, len: usize) -> *const u32 {
            fn glue(input: &[u8]) -> ::wasmforge_pdk::__private::Outcome {
                #name.__restore(input)
            }
            ::wasmforge_pdk::__private::call_buffer(ptr, len, glue)
        }
    )
    .into()
}

/// `#[host_fn]` on an `extern "C" { ... }` block declares functions the Python
/// host provides. Each declaration becomes an ordinary safe Rust function that
/// encodes its arguments, calls the host, and decodes the result, with the same
/// encodings as `#[plugin_fn]` (docs/ABI.md, "Host functions"). Outside wasm
/// (the runner, `cargo test`) it calls a handler registered with
/// `wasmforge_pdk::native::register_host_fn`.
#[proc_macro_attribute]
pub fn host_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(error) = refuse_arguments(attr, "#[host_fn]") {
        return error;
    }
    let block = syn::parse_macro_input!(item as ItemForeignMod);
    let mut out = TokenStream2::new();
    for item in &block.items {
        match item {
            ForeignItem::Fn(function) => match expand_host_fn(function) {
                Ok(tokens) => out.extend(tokens),
                Err(error) => out.extend(error.to_compile_error()),
            },
            other => out.extend(
                syn::Error::new_spanned(other, "#[host_fn] blocks hold only function declarations").to_compile_error(),
            ),
        }
    }
    out.into()
}

fn expand_host_fn(function: &syn::ForeignItemFn) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    check_signature(sig)?;
    let params = sig.inputs.iter().map(param).collect::<syn::Result<Vec<_>>>()?;
    let returns = returns(&sig.output)?;
    if returns.fallible {
        return Err(syn::Error::new_spanned(
            &sig.output,
            "host functions cannot return Result: an exception in the Python host function fails the plugin call",
        ));
    }
    if matches!(returns.wire, Wire::Str { borrowed: true } | Wire::Bytes { borrowed: true }) {
        return Err(syn::Error::new_spanned(&sig.output, "host functions return owned values: use String or Vec<u8>"));
    }
    let name = &sig.ident;
    let name_text = name.to_string();
    let (native, input_wire, output_wire) = conventions(&params, &returns);
    let record = metadata(
        false,
        "import",
        &name_text,
        &params,
        &returns,
        native,
        input_wire,
        output_wire,
        &doc_text(&function.attrs),
    );
    let line = format!("{}\n", record);
    let record_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let record_len = line.len();
    let record_static = format_ident!("__WF_IMPORT_RECORD_{}", name);
    let raw = format_ident!("__wf_import_{}", name);
    let attrs = &function.attrs;
    let vis = &function.vis;
    let names: Vec<_> = params.iter().map(|p| &p.name).collect();
    let types: Vec<_> = params.iter().map(|p| &p.ty).collect();
    let output = &sig.output;

    let encode = match input_wire {
        "none" => quote!(let __wf_input: &[u8] = &[];),
        "str" => {
            let n = names[0];
            quote!(let __wf_input: &[u8] = ::std::convert::AsRef::<str>::as_ref(&#n).as_bytes();)
        }
        "bytes" => {
            let n = names[0];
            quote!(let __wf_input: &[u8] = ::std::convert::AsRef::<[u8]>::as_ref(&#n);)
        }
        _ => {
            quote!(let __wf_input_vec = ::wasmforge_pdk::__private::host_args_json(&(#(&#names,)*)); let __wf_input: &[u8] = &__wf_input_vec;)
        }
    };
    let decode = match returns.wire {
        Wire::Unit => quote!(let _ = __wf_output;),
        Wire::Str { .. } => quote!(::wasmforge_pdk::__private::host_ret_str(__wf_output, #name_text)),
        Wire::Bytes { .. } => quote!(__wf_output),
        Wire::Number(_) | Wire::Json => quote!(::wasmforge_pdk::__private::host_ret_json(&__wf_output, #name_text)),
    };
    let wasm_body = if native {
        let result = match &returns.ty {
            Some(ty) if returns.wire != Wire::Unit => quote!(-> #ty),
            _ => quote!(),
        };
        quote! {
            #[link(wasm_import_module = "wasmforge:host")]
            extern "C" {
                #[link_name = #name_text]
                fn #raw(#(#names: #types),*) #result;
            }
            unsafe { #raw(#(#names),*) }
        }
    } else {
        quote! {
            #[link(wasm_import_module = "wasmforge:host")]
            extern "C" {
                #[link_name = #name_text]
                fn #raw(ptr: *const u8, len: usize, out: *mut u32);
            }
            #encode
            let mut __wf_slot = [0u32; 2];
            unsafe { #raw(__wf_input.as_ptr(), __wf_input.len(), __wf_slot.as_mut_ptr()) };
            let __wf_output = unsafe { ::wasmforge_pdk::__private::take_host_output(__wf_slot) };
            #decode
        }
    };
    // Outside wasm every call goes through the registry as bytes, numbers included (as JSON).
    let (native_encode, native_decode) = if native {
        let encode = if params.is_empty() {
            quote!(let __wf_input: &[u8] = &[];)
        } else {
            quote!(let __wf_input_vec = ::wasmforge_pdk::__private::host_args_json(&(#(&#names,)*)); let __wf_input: &[u8] = &__wf_input_vec;)
        };
        let decode = match returns.wire {
            Wire::Unit => quote!(let _ = __wf_output;),
            _ => quote!(::wasmforge_pdk::__private::host_ret_json(&__wf_output, #name_text)),
        };
        (encode, decode)
    } else {
        (encode.clone(), decode.clone())
    };
    Ok(quote! {
        #(#attrs)*
        #[allow(unused_variables)]
        #vis fn #name(#(#names: #types),*) #output {
            #[cfg(target_arch = "wasm32")]
            {
                #wasm_body
            }
            #[cfg(not(target_arch = "wasm32"))]
            {
                #native_encode
                let __wf_output = ::wasmforge_pdk::native::call_host_fn(#name_text, __wf_input);
                #native_decode
            }
        }

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[link_section = "wasmforge.exports"]
        #[used]
        static #record_static: [u8; #record_len] = *#record_bytes;
    })
}

/// How a function's values travel (docs/ABI.md): whether it is a native call
/// (plain numbers only, no `Result`), and the input and output encodings.
fn conventions(params: &[Param], returns: &Returns) -> (bool, &'static str, &'static str) {
    let native = !returns.fallible
        && matches!(returns.wire, Wire::Number(_) | Wire::Unit)
        && params.iter().all(|p| matches!(p.wire, Wire::Number(_)));
    let input = match params {
        [] => "none",
        [only] if matches!(only.wire, Wire::Str { .. } | Wire::Bytes { .. }) => only.wire.name(),
        _ => "json",
    };
    let output = match returns.wire {
        Wire::Number(_) => "json",
        other => other.name(),
    };
    (native, input, output)
}

/// How a value travels across the boundary.
#[derive(Clone, Copy, PartialEq)]
enum Wire {
    /// A plain number: i32/i64/f32/f64 in wasm, by value.
    Number(&'static str),
    /// UTF-8 text; `borrowed` for `&str`.
    Str { borrowed: bool },
    /// Raw bytes; `borrowed` for `&[u8]`.
    Bytes { borrowed: bool },
    /// Nothing: `()` or no return type.
    Unit,
    /// Anything else serde can handle, as JSON.
    Json,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Number(_) => "number",
            Wire::Str { .. } => "str",
            Wire::Bytes { .. } => "bytes",
            Wire::Unit => "unit",
            Wire::Json => "json",
        }
    }
}

struct Param {
    name: syn::Ident,
    ty: Type,
    wire: Wire,
}

struct Returns {
    /// The value type: `T` of `Result<T, E>`, or the whole return type.
    ty: Option<Type>,
    /// The return type as written, for the metadata.
    written: Option<Type>,
    wire: Wire,
    fallible: bool,
}

fn expand(function: &ItemFn, msgpack: bool) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    check_signature(sig)?;
    let name = &sig.ident;
    let export_name = name.to_string();
    if RESERVED_NAMES.contains(&export_name.as_str()) || export_name.starts_with("__wf_") {
        return Err(syn::Error::new(
            name.span(),
            format!("`{}` is reserved by the wasm module; rename the function", export_name),
        ));
    }
    let params = sig.inputs.iter().map(param).collect::<syn::Result<Vec<_>>>()?;
    let returns = returns(&sig.output)?;

    let (native, input_wire, output_wire) = conventions(&params, &returns);

    // MessagePack carries what JSON would: numbers and bools go natively, raw text and bytes as they are.
    let msgpack = msgpack && !native;
    let glue = glue_fn(function, &params, &returns, input_wire, msgpack);
    let record = metadata(
        msgpack,
        "export",
        &export_name,
        &params,
        &returns,
        native,
        input_wire,
        output_wire,
        &doc_text(&function.attrs),
    );
    let export = if native {
        native_export(name, &params, &returns)
    } else {
        buffer_export(name, takes_input(&params, input_wire))
    };

    let meta_const = format_ident!("__WF_META_{}", name);
    let record_static = format_ident!("__WF_RECORD_{}", name);
    let line = format!("{}\n", record);
    let record_bytes = syn::LitByteStr::new(line.as_bytes(), Span::call_site());
    let record_len = line.len();
    Ok(quote! {
        #glue

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        pub const #meta_const: &str = #record;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[link_section = "wasmforge.exports"]
        #[used]
        static #record_static: [u8; #record_len] = *#record_bytes;

        #export
    })
}

fn check_signature(sig: &syn::Signature) -> syn::Result<()> {
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(token, "#[plugin_fn] functions cannot be async"));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new_spanned(token, "#[plugin_fn] functions cannot be unsafe"));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(abi, "#[plugin_fn] writes the extern \"C\" export itself; remove the ABI"));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "#[plugin_fn] functions cannot be generic: the export needs concrete types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(variadic, "#[plugin_fn] functions cannot be variadic"));
    }
    Ok(())
}

fn param(arg: &FnArg) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Receiver(receiver) => {
            return Err(syn::Error::new_spanned(receiver, "#[plugin_fn] goes on free functions, not methods"))
        }
        FnArg::Typed(typed) => typed,
    };
    let name = match &*typed.pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => ident.ident.clone(),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[plugin_fn] arguments must be plain names (`x: T`); destructure inside the function",
            ))
        }
    };
    let wire = classify(&typed.ty, Position::Argument)?;
    Ok(Param { name, ty: (*typed.ty).clone(), wire })
}

fn returns(output: &ReturnType) -> syn::Result<Returns> {
    let ty = match output {
        ReturnType::Default => return Ok(Returns { ty: None, written: None, wire: Wire::Unit, fallible: false }),
        ReturnType::Type(_, ty) => ty,
    };
    if let Some(ok) = result_ok_type(ty) {
        let wire = classify(&ok, Position::Result)?;
        return Ok(Returns { ty: Some(ok), written: Some((**ty).clone()), wire, fallible: true });
    }
    let wire = classify(ty, Position::Result)?;
    Ok(Returns { ty: Some((**ty).clone()), written: Some((**ty).clone()), wire, fallible: false })
}

/// `T` when `ty` is `Result<T, E>` (or a `Result<T>` alias).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Result" {
        return None;
    }
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Position {
    Argument,
    Result,
}

fn classify(ty: &Type, position: Position) -> syn::Result<Wire> {
    match ty {
        Type::Paren(inner) => classify(&inner.elem, position),
        Type::Group(inner) => classify(&inner.elem, position),
        Type::Tuple(tuple) if tuple.elems.is_empty() => match position {
            Position::Result => Ok(Wire::Unit),
            Position::Argument => Err(syn::Error::new_spanned(ty, "a `()` argument carries nothing; remove it")),
        },
        Type::Reference(reference) => {
            if let Some(token) = &reference.mutability {
                return Err(syn::Error::new_spanned(
                    token,
                    "#[plugin_fn] cannot pass `&mut` across the wasm boundary; take the value and return the new one",
                ));
            }
            match &*reference.elem {
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => Ok(Wire::Str { borrowed: true }),
                Type::Slice(slice) if is_ident(&slice.elem, "u8") => Ok(Wire::Bytes { borrowed: true }),
                _ => Err(syn::Error::new_spanned(
                    ty,
                    "#[plugin_fn] supports only `&str` and `&[u8]` as references; take this argument by value",
                )),
            }
        }
        Type::Path(path) if path.qself.is_none() => {
            let segment = path.path.segments.last().expect("a path has a segment");
            let ident = segment.ident.to_string();
            if matches!(segment.arguments, PathArguments::None) {
                if let Some(wasm) = number_wasm_type(&ident) {
                    return Ok(Wire::Number(wasm));
                }
                if ident == "String" {
                    return Ok(Wire::Str { borrowed: false });
                }
            }
            if ident == "Vec" {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    if let Some(GenericArgument::Type(elem)) = args.args.first() {
                        if is_ident(elem, "u8") {
                            return Ok(Wire::Bytes { borrowed: false });
                        }
                    }
                }
            }
            Ok(Wire::Json)
        }
        Type::Array(_) | Type::Tuple(_) => Ok(Wire::Json),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "#[plugin_fn] needs a concrete type here, not `impl Trait`",
        )),
        _ => Err(syn::Error::new_spanned(
            ty,
            "#[plugin_fn] cannot pass this type across the wasm boundary; use numbers, bool, &str/String, &[u8]/Vec<u8>, Option, Vec or a serde type",
        )),
    }
}

fn is_ident(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

/// The wasm value type a Rust number is passed as, if `ident` is one.
fn number_wasm_type(ident: &str) -> Option<&'static str> {
    Some(match ident {
        "i8" | "i16" | "i32" | "u8" | "u16" | "u32" | "bool" => "i32",
        "i64" | "u64" => "i64",
        "f32" => "f32",
        "f64" => "f64",
        _ => return None,
    })
}

/// `__wf_call_NAME(input) -> Outcome`: decode, call, encode. Compiled for every
/// target so the runner crate runs exactly what the wasm export runs.
///
/// The glue is compiled with the plugin crate, unoptimized in a debug build, once
/// per function; so it unpacks results with `match` (not `?` and `map_err`, each
/// a generic function per type) and hands errors and numbers to the pdk's
/// non-generic helpers, which are compiled once, optimized.
fn glue_fn(function: &ItemFn, params: &[Param], returns: &Returns, input_wire: &str, msgpack: bool) -> TokenStream2 {
    let name = &function.sig.ident;
    let glue_name = format_ident!("__wf_call_{}", name);
    let input = format_ident!("__wf_input");

    let decode = match input_wire {
        "none" => quote!(let _ = #input;),
        "str" => {
            let p = &params[0];
            let (pname, label) = (&p.name, p.name.to_string());
            let conv = if p.wire == (Wire::Str { borrowed: true }) { quote!() } else { quote!(.to_owned()) };
            quote_spanned!(p.ty.span()=>
                let #pname = match ::wasmforge_pdk::__private::arg_str(#input, #label) {
                    Ok(__wf_arg) => __wf_arg #conv,
                    Err(__wf_failure) => return Err(__wf_failure),
                };
            )
        }
        "bytes" => {
            let p = &params[0];
            let pname = &p.name;
            let conv = if p.wire == (Wire::Bytes { borrowed: true }) { quote!() } else { quote!(.to_vec()) };
            quote!(let #pname = #input #conv;)
        }
        _ => {
            let count = params.len();
            let each = params.iter().map(|p| {
                let (pname, label, ty) = (&p.name, p.name.to_string(), decode_type(p));
                // Numbers, strings and bytes are decoded by the pdk's compiled code;
                // only other types instantiate serde's decoder in the plugin.
                let method = match p.wire {
                    Wire::Number(_) | Wire::Str { .. } | Wire::Bytes { .. } => "known",
                    Wire::Unit | Wire::Json => "serde",
                };
                // Spanned at the type, so a type serde cannot decode is the error's place.
                let method = syn::Ident::new(method, p.ty.span());
                quote_spanned!(p.ty.span()=>
                    let #pname: #ty = match __wf_args.#method::<#ty>(#label) {
                        Ok(__wf_arg) => __wf_arg,
                        Err(__wf_failure) => return Err(__wf_failure),
                    };
                )
            });
            if msgpack {
                quote! {
                    let mut __wf_args = match ::wasmforge_pdk::__private::args_msgpack(#input, #count) {
                        Ok(__wf_args) => __wf_args,
                        Err(__wf_failure) => return Err(__wf_failure),
                    };
                    #(#each)*
                    if let Err(__wf_failure) = __wf_args.finish() {
                        return Err(__wf_failure);
                    }
                }
            } else {
                quote! {
                    let mut __wf_args = match ::wasmforge_pdk::__private::args_json(#input, #count) {
                        Ok(__wf_args) => __wf_args,
                        Err(__wf_failure) => return Err(__wf_failure),
                    };
                    #(#each)*
                }
            }
        }
    };
    let call_args = params.iter().map(|p| {
        let pname = &p.name;
        match (input_wire, p.wire) {
            ("json", Wire::Str { borrowed: true }) | ("json", Wire::Bytes { borrowed: true }) => quote!(&#pname),
            _ => quote!(#pname),
        }
    });
    let call = quote!(#name(#(#call_args),*));
    let value = if returns.fallible {
        quote!(match #call {
            Ok(__wf_ok) => __wf_ok,
            Err(__wf_err) => return Err({
                #[allow(unused_imports)]
                use ::wasmforge_pdk::__private::errors::{DebugData, DisplayData, DisplayOnly, TextError};
                (&&&::wasmforge_pdk::__private::errors::ErrorOf(&__wf_err)).failure()
            }),
        })
    } else {
        call
    };
    let value_span = returns.ty.as_ref().map(|t| t.span()).unwrap_or_else(Span::call_site);
    let encode = match returns.wire {
        Wire::Str { .. } | Wire::Bytes { .. } => {
            quote_spanned!(value_span=> ::wasmforge_pdk::__private::ret_raw(__wf_value))
        }
        Wire::Unit => quote_spanned!(value_span=> ::wasmforge_pdk::__private::ret_unit(__wf_value)),
        Wire::Number(_) | Wire::Json if msgpack => {
            quote_spanned!(value_span=> ::wasmforge_pdk::__private::ret_msgpack(&__wf_value))
        }
        Wire::Number(_) => quote_spanned!(value_span=> ::wasmforge_pdk::__private::ret_number(__wf_value)),
        Wire::Json => quote_spanned!(value_span=> ::wasmforge_pdk::__private::ret_json(&__wf_value)),
    };
    // A lone `Vec<u8>`/`String` argument: in wasm, a second glue takes the input
    // bytes by value, so the argument is the buffer the host wrote, not a copy.
    let owned = match params {
        [p] if takes_input(params, input_wire) => {
            let owned_name = format_ident!("__wf_own_{}", name);
            let (pname, label) = (&p.name, p.name.to_string());
            let take = if input_wire == "str" {
                quote_spanned!(p.ty.span()=>
                    let #pname = match ::wasmforge_pdk::__private::arg_string(#input, #label) {
                        Ok(__wf_arg) => __wf_arg,
                        Err(__wf_failure) => return Err(__wf_failure),
                    };
                )
            } else {
                quote!(let #pname = #input;)
            };
            quote! {
                #[cfg(target_arch = "wasm32")]
                #[doc(hidden)]
                #[allow(non_snake_case)]
                pub fn #owned_name(#input: ::std::vec::Vec<u8>) -> ::wasmforge_pdk::__private::Outcome {
                    #take
                    let __wf_value = #value;
                    #encode
                }
            }
        }
        _ => quote!(),
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        pub fn #glue_name(#input: &[u8]) -> ::wasmforge_pdk::__private::Outcome {
            #decode
            let __wf_value = #value;
            #encode
        }

        #owned
    }
}

/// Whether the wasm export uses the glue that takes its input by value (see glue_fn).
fn takes_input(params: &[Param], input_wire: &str) -> bool {
    matches!((input_wire, params), ("str", [p]) | ("bytes", [p]) if matches!(p.wire, Wire::Str { borrowed: false } | Wire::Bytes { borrowed: false }))
}

/// The owned type a JSON-decoded argument is read into.
fn decode_type(p: &Param) -> TokenStream2 {
    match p.wire {
        Wire::Str { borrowed: true } => quote_spanned!(p.ty.span()=> ::std::string::String),
        Wire::Bytes { borrowed: true } => quote_spanned!(p.ty.span()=> ::std::vec::Vec<u8>),
        _ => p.ty.to_token_stream(),
    }
}

fn native_export(name: &syn::Ident, params: &[Param], returns: &Returns) -> TokenStream2 {
    let export_fn = format_ident!("__wf_export_{}", name);
    let export_name = name.to_string();
    let names: Vec<_> = params.iter().map(|p| &p.name).collect();
    let types = params.iter().map(|p| &p.ty);
    let output = match &returns.ty {
        Some(ty) if returns.wire != Wire::Unit => quote!(-> #ty),
        _ => quote!(),
    };
    quote! {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #[export_name = #export_name]
        pub extern "C" fn #export_fn(#(#names: #types),*) #output {
            #name(#(#names),*)
        }
    }
}

fn buffer_export(name: &syn::Ident, owned: bool) -> TokenStream2 {
    let export_fn = format_ident!("__wf_export_{}", name);
    let export_name = name.to_string();
    let body = if owned {
        let glue_name = format_ident!("__wf_own_{}", name);
        quote!(::wasmforge_pdk::__private::call_buffer_owned(ptr, len, #glue_name))
    } else {
        let glue_name = format_ident!("__wf_call_{}", name);
        quote!(::wasmforge_pdk::__private::call_buffer(ptr, len, #glue_name))
    };
    quote! {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #[export_name = #export_name]
        pub extern "C" fn #export_fn(ptr: *mut u8, len: usize) -> *const u32 {
            #body
        }
    }
}

/// One JSON object describing the export (docs/ABI.md, "Metadata").
fn metadata(
    msgpack: bool,
    kind: &str,
    name: &str,
    params: &[Param],
    returns: &Returns,
    native: bool,
    input: &str,
    output: &str,
    doc: &str,
) -> String {
    let params_json: Vec<String> = params
        .iter()
        .map(|p| {
            let wasm = match p.wire {
                Wire::Number(w) => format!(",\"wasm\":\"{}\"", w),
                _ => String::new(),
            };
            format!(
                "{{\"name\":\"{}\",\"type\":\"{}\",\"wire\":\"{}\"{}}}",
                escape(&p.name.to_string()),
                escape(&type_text(&p.ty)),
                p.wire.name(),
                wasm
            )
        })
        .collect();
    let returns_text = returns.written.as_ref().map(type_text).unwrap_or_else(|| "()".to_string());
    let result_wasm = match returns.wire {
        Wire::Number(w) if native => format!(",\"result_wasm\":\"{}\"", w),
        _ => String::new(),
    };
    let doc = if doc.is_empty() { String::new() } else { format!(",\"doc\":\"{}\"", escape(doc)) };
    // "wire": how the "json" input and output travel; absent means JSON (older hosts and plugins).
    let (version, wire) = if msgpack { (MSGPACK_RECORD_VERSION, ",\"wire\":\"msgpack\"") } else { (WIRE_VERSION, "") };
    format!(
        "{{\"v\":{},\"kind\":\"{}\",\"name\":\"{}\",\"abi\":\"{}\",\"input\":\"{}\",\"output\":\"{}\",\"params\":[{}],\"returns\":\"{}\",\"fallible\":{}{}{}{}}}",
        version,
        kind,
        escape(name),
        if native { "native" } else { "buffer" },
        input,
        output,
        params_json.join(","),
        escape(&returns_text),
        returns.fallible,
        result_wasm,
        wire,
        doc,
    )
}

/// A type as a person writes it: `Vec<u8>`, `&str`, `Option<String>`.
fn type_text(ty: &Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last().unwrap_or(' ');
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let word = |ch: char| ch.is_alphanumeric() || ch == '_' || ch == '\'';
            if word(prev) && word(next) || prev == ',' {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A JSON string's contents: quotes, backslashes and control characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The `///` doc comment of an item, its lines joined with newlines and the
/// one space after `///` removed. Read from the tokens, so it works with syn 1
/// and syn 2 alike (their `Attribute` APIs differ).
fn doc_text(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        let tokens: Vec<proc_macro2::TokenTree> = attr.to_token_stream().into_iter().collect();
        // `# [doc = "text"]`: the bracketed group holds `doc`, `=`, the literal.
        let group = match tokens.last() {
            Some(proc_macro2::TokenTree::Group(group)) => group,
            _ => continue,
        };
        let inner: Vec<proc_macro2::TokenTree> = group.stream().into_iter().collect();
        match inner.as_slice() {
            [proc_macro2::TokenTree::Ident(ident), proc_macro2::TokenTree::Punct(eq), literal]
                if ident == "doc" && eq.as_char() == '=' =>
            {
                if let Ok(text) = syn::parse2::<syn::LitStr>(literal.to_token_stream()) {
                    let value = text.value();
                    lines.push(value.strip_prefix(' ').map(str::to_string).unwrap_or(value));
                }
            }
            _ => {}
        }
    }
    lines.join("\n").trim().to_string()
}
