//! The wit-bindgen glue for `wicket:admission/admission-plugin`, generated
//! once here so that plugins never see it: they use [`crate::Plugin`] and
//! [`crate::export_plugin!`] instead.

wit_bindgen::generate!({
    path: "../../wit/0.2",
    world: "admission-plugin",
    pub_export_macro: true,
    export_macro_name: "__export_admission_plugin",
    default_bindings_module: "wicket_sdk::bindings",
});
