//! Host bindings generated from `wit/`; private to the crate's capability modules.
wasmtime::component::bindgen!({
    world: "bank-provider",
    path: "../wit",
});
