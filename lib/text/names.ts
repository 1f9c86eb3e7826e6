/**
 * The rules that keep one name from posing as another, shared by the chat
 * room and the IM server: names are normalised (NFKC, so a fullwidth
 * `ａlice` is `alice`), may not hold invisible or format characters
 * (U+200B, U+00AD, U+2060, bidi marks...), and two names whose confusable
 * skeletons (Unicode TR39) are equal count as the same name.
 *
 * @module
 */
import confusables from "unhomoglyph/data.json" with { type: "json" };

/**
 * TR39's confusables (Unicode 13, from the `unhomoglyph` package): each
 * character that looks like another, mapped to its prototype (`е` Cyrillic
 * to `e`, `1` to `l`, `m` to `rn`).
 */
const PROTOTYPES = new Map(Object.entries(confusables as Record<string, string>));

/**
 * Characters a name may not hold: controls, format characters (Cf: zero
 * width spaces and joiners, the soft hyphen, word joiner, bidi marks...),
 * every default-ignorable code point (shown as nothing), private use,
 * unassigned and surrogate code points, and line or paragraph separators.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Zl}\p{Zp}]/u;

/** A name as it is compared and kept: NFKC, trimmed. */
export function normalizeName(text: string): string {
  return text.normalize("NFKC").trim();
}

/** Why a (normalised) name is refused for its characters, or null when they are fine. */
export function nameCharsProblem(name: string): string | null {
  const bad = INVISIBLE.exec(name);
  if (!bad) return null;
  const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
  return `it contains U+${code}, an invisible or control character`;
}

/**
 * TR39's skeleton: NFD, each character replaced by its prototype, NFD
 * again. Two names with one skeleton look alike (`alice`, `alicе` with a
 * Cyrillic е, `ａlice`).
 */
export function skeleton(name: string): string {
  let out = "";
  for (const c of name.normalize("NFD")) out += PROTOTYPES.get(c) ?? c;
  return out.normalize("NFD");
}

/**
 * A map keyed by name that also knows its names' skeletons, so that
 * {@link NameMap.hasLookAlike} finds a name that looks like a present one
 * in one look-up, however many are present.
 */
export class NameMap<V> extends Map<string, V> {
  #skeletons = new Map<string, number>();

  override set(name: string, value: V): this {
    // Map's constructor calls set before this class's fields exist.
    if (this.#skeletons && !super.has(name)) {
      const key = skeleton(name);
      this.#skeletons.set(key, (this.#skeletons.get(key) ?? 0) + 1);
    }
    return super.set(name, value);
  }

  override delete(name: string): boolean {
    if (!super.delete(name)) return false;
    const key = skeleton(name);
    const n = this.#skeletons.get(key) ?? 0;
    if (n <= 1) this.#skeletons.delete(key);
    else this.#skeletons.set(key, n - 1);
    return true;
  }

  override clear(): void {
    super.clear();
    this.#skeletons.clear();
  }

  /** Whether a present name has the skeleton of `name` (it is there, or looks like it). */
  hasLookAlike(name: string): boolean {
    return this.#skeletons.has(skeleton(name));
  }
}
