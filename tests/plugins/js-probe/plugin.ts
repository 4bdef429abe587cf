/**
 * A TypeScript test plugin that does what its `behave` setting says, to pin
 * down how Wicket serves a componentize-js component: verdicts, patches, its
 * own errors, a loop stopped at its deadline, and the sandbox (no module
 * loader, no process or environment, a fresh instance per review).
 */

import { Patch, PluginError, Review, Verdict, definePlugin, info } from "wicket";

const BEHAVIOURS = ["allow", "deny", "add-label", "error", "loop", "sandbox"];

interface Settings {
  behave: string;
}

// Module state: a fresh instance per review sees it as the snapshot left it.
let reviewsSeen = 0;

/** What the global `name` is in this sandbox. */
function global(name: string): string {
  return typeof (globalThis as Record<string, unknown>)[name];
}

export const plugin = definePlugin<Settings>({
  validateSettings(settings) {
    if (!BEHAVIOURS.includes(settings.behave)) {
      throw new Error(`behave must be one of ${BEHAVIOURS.join(", ")}, not ${settings.behave}`);
    }
  },

  review(review: Review, settings): Verdict {
    reviewsSeen += 1;
    info(`js probe ${settings.behave} uid=${review.uid}`);
    switch (settings.behave) {
      case "allow":
        return Verdict.allow().annotate("seen", String(reviewsSeen));
      case "deny":
        return Verdict.deny(`js says no to ${review.kind} ${review.name}`, 418);
      case "add-label": {
        const patch = new Patch();
        if (!review.object!.has("/metadata/labels")) patch.add("/metadata/labels", {});
        return Verdict.patch(patch.add("/metadata/labels/wicket.dev~1touched", "js"));
      }
      case "error":
        throw new PluginError("the js probe cannot judge this");
      case "loop":
        for (;;) reviewsSeen += 1;
      default:
        return Verdict.allow()
          .warn(`reviews seen: ${reviewsSeen}`)
          .warn(`require: ${global("require")}, process: ${global("process")}, Deno: ${global("Deno")}`);
    }
  },
});
