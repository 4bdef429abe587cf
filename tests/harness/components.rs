//! Components made for a test: a plugin under another digest, and one
//! that takes long to compile.

/// SHA-256 as lower-case hex, as `/plugins` shows digests.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `wasm` with a custom section appended: the same component, behaving the
/// same, under another digest (a "new version" for reload tests).
pub fn with_custom_section(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"wicket-test";
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

/// A component (not a plugin: it implements no world) whose one core module
/// takes wasmtime long to compile: `functions` functions of `operations`
/// arithmetic steps each. Its load fails after the compile, at linking.
pub fn slow_to_compile(functions: u32, operations: u32) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, Component, Function, FunctionSection, Instruction, Module, ModuleSection,
        TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([ValType::I64], [ValType::I64]);
    let mut declared = FunctionSection::new();
    let mut code = CodeSection::new();
    for _ in 0..functions {
        declared.function(0);
        let mut body = Function::new([(8, ValType::I64)]);
        for step in 0..operations {
            body.instruction(&Instruction::LocalGet(step % 9));
            body.instruction(&Instruction::I64Const(i64::from(step) | 1));
            body.instruction(&Instruction::I64Mul);
            body.instruction(&Instruction::LocalSet((step + 1) % 9));
        }
        body.instruction(&Instruction::LocalGet(0));
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module.section(&types).section(&declared).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}
