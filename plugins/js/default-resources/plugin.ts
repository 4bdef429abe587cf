/**
 * Default resources, in TypeScript: give every container and init container
 * the requests and limits the settings name where it sets none, leaving
 * what it sets alone.
 *
 * Settings (the manifest's [settings]):
 *
 *     [settings.requests]
 *     cpu = "100m"
 *     memory = "128Mi"
 *     [settings.limits]
 *     memory = "256Mi"
 */

import { Patch, Review, Verdict, definePlugin, pointer } from "wicket";

type Quantities = Record<string, string>;

interface Settings {
  requests?: Quantities;
  limits?: Quantities;
}

const KINDS = ["requests", "limits"] as const;

export const plugin = definePlugin<Settings>({
  validateSettings(settings) {
    if (!settings.requests && !settings.limits) {
      throw new Error("set requests, limits or both");
    }
    for (const kind of KINDS) {
      for (const [resource, quantity] of Object.entries(settings[kind] ?? {})) {
        if (typeof quantity !== "string" || quantity === "") {
          throw new Error(`${kind}.${resource} must be a quantity such as "100m" or "128Mi"`);
        }
      }
    }
  },

  review(review: Review, settings): Verdict {
    if (!review.object) return Verdict.allow(); // a delete
    const patch = new Patch();
    const defaulted: string[] = [];
    for (const container of review.object.containers()) {
      // Ephemeral containers may not set resources.
      if (container.field === "ephemeralContainers") continue;
      if (defaultResources(container.path, container.get("/resources"), settings, patch)) {
        defaulted.push(container.containerName);
      }
    }
    if (patch.isEmpty) return Verdict.allow();
    return Verdict.patch(patch).annotate("defaulted", defaulted.join(","));
  },
});

/** Adds to `patch` what `settings` name and the container at `path`, whose
 * `resources` are these, lacks; whether it added anything. */
function defaultResources(
  path: string,
  resources: Record<string, Quantities> | undefined,
  settings: Settings,
  patch: Patch,
): boolean {
  if (resources === undefined) {
    const wanted = KINDS.filter((kind) => settings[kind]).map((kind) => [kind, settings[kind]]);
    patch.add(`${path}/resources`, Object.fromEntries(wanted));
    return true;
  }
  let added = false;
  for (const kind of KINDS) {
    const present = resources[kind];
    const missing = Object.entries(settings[kind] ?? {}).filter(([name]) => present?.[name] === undefined);
    if (missing.length === 0) continue;
    added = true;
    if (present === undefined) {
      patch.add(`${path}/resources/${kind}`, Object.fromEntries(missing));
    } else {
      for (const [name, quantity] of missing) patch.add(`${path}/resources/${kind}${pointer(name)}`, quantity);
    }
  }
  return added;
}
