//! Renders `deploy/kustomize` as a user would, with the real `kubectl
//! kustomize`: a copy of `deploy/` (kustomize refuses absolute paths and
//! files outside a kustomization's folder) whose bundled overlay has
//! stand-in plugin files, and a kustomization per combination beside it.

use std::path::Path;
use std::process::Command;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::workspace_root;

/// A copy of `deploy/` to render from.
pub struct Renderer {
    dir: tempfile::TempDir,
}

impl Renderer {
    /// Copies `deploy/` and fills the bundled overlay's plugin files with
    /// stand-ins (what the ConfigMaps hold does not change what renders).
    pub fn new() -> Renderer {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&workspace_root().join("deploy"), &dir.path().join("deploy"));
        let overlay = dir.path().join("deploy/kustomize/overlays/bundled");
        let plugins = overlay.join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let text = std::fs::read_to_string(overlay.join("kustomization.yaml")).unwrap();
        let kustomization: Value = serde_saphyr::from_str(&text).unwrap();
        for generator in kustomization["configMapGenerator"].as_array().unwrap() {
            for file in generator["files"].as_array().unwrap() {
                let file = overlay.join(file.as_str().unwrap());
                std::fs::write(file, b"stand-in").unwrap();
            }
        }
        Renderer { dir }
    }

    /// `deploy/kustomize/RESOURCE` with `deploy/kustomize/components/C` for
    /// each of `components`, in that order, rendered by `kubectl
    /// kustomize`: each object, or the renderer's error.
    pub fn render(&self, resource: &str, components: &[&str]) -> Result<Vec<Value>, String> {
        let name = std::iter::once(resource)
            .chain(components.iter().copied())
            .collect::<Vec<_>>()
            .join("+")
            .replace('/', "_");
        let root = self.dir.path().join("combinations").join(name);
        std::fs::create_dir_all(&root).unwrap();
        let mut kustomization = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - ../../deploy/kustomize/{resource}\n"
        );
        if !components.is_empty() {
            kustomization.push_str("components:\n");
            for component in components {
                kustomization.push_str(&format!(
                    "  - ../../deploy/kustomize/components/{component}\n"
                ));
            }
        }
        std::fs::write(root.join("kustomization.yaml"), kustomization).unwrap();
        self.kustomize(&root)
    }

    /// The kustomization at `deploy/kustomize/PATH` as it is.
    pub fn render_path(&self, path: &str) -> Result<Vec<Value>, String> {
        self.kustomize(&self.dir.path().join("deploy/kustomize").join(path))
    }

    fn kustomize(&self, root: &Path) -> Result<Vec<Value>, String> {
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(root)
            .output()
            .expect("kubectl (1.32 ships kustomize v5.5) runs");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let text = String::from_utf8(output.stdout).unwrap();
        serde_saphyr::from_multiple(&text).map_err(|error| error.to_string())
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

/// The rendered object of `kind` named `name`, if there is one.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
}

/// The rendered object of `kind` named `name`, as its type.
pub fn typed<K: DeserializeOwned>(objects: &[Value], kind: &str, name: &str) -> K {
    let object = find(objects, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(object.clone()).unwrap_or_else(|error| panic!("{kind} {name}: {error}"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
