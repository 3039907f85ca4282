// Rendering only the rows near the viewport. A 1,000-row table whose bars move 800 times a second spent three
// quarters of Chromium's main thread in style, layout and paint of rows nobody could see (docs/benchmarks.md);
// with a window the DOM holds about a screenful plus `overscan` rows on each side, whatever the page size.
import { useEffect, useRef, useState, type RefObject } from "react";

/** Tables up to this many rows render whole (the browser's find-in-page then sees every row). */
export const WINDOW_FROM = 100;

export interface RowWindow { start: number; end: number; rowHeight: number }

/**
 * The rows [start, end) of a `count`-row table body that should be in the DOM, from the window's scroll position.
 * The row height is measured from a rendered row (`tr[data-row]`), so the CSS stays the one source of it.
 */
export function useRowWindow(count: number, body: RefObject<HTMLElement | null>, overscan = 15): RowWindow {
  const rowHeight = useRef(40);
  const [range, setRange] = useState(() => ({ start: 0, end: Math.min(count, count > WINDOW_FROM ? 60 : count) }));

  useEffect(() => {
    if (count <= WINDOW_FROM) {
      setRange({ start: 0, end: count });
      return undefined;
    }
    let frame = 0;
    const update = () => {
      frame = 0;
      const el = body.current;
      if (!el) return;
      const row = el.querySelector<HTMLElement>("tr[data-row]");
      const measured = row?.getBoundingClientRect().height;
      if (measured) rowHeight.current = measured;
      const h = rowHeight.current;
      // The body's top is row 0's top: the rows above the window are one spacer row of their total height.
      const top = el.getBoundingClientRect().top;
      const start = Math.min(count, Math.max(0, Math.floor(-top / h) - overscan));
      const end = Math.min(count, Math.max(start, Math.ceil((window.innerHeight - top) / h) + overscan));
      setRange((r) => (r.start === start && r.end === end ? r : { start, end }));
    };
    const schedule = () => { if (!frame) frame = requestAnimationFrame(update); };
    update();
    window.addEventListener("scroll", schedule, { passive: true });
    window.addEventListener("resize", schedule);
    return () => {
      cancelAnimationFrame(frame);
      window.removeEventListener("scroll", schedule);
      window.removeEventListener("resize", schedule);
    };
  }, [count, body, overscan]);

  return { ...range, rowHeight: rowHeight.current };
}
