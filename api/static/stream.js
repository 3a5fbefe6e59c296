// The live stream (/api/stream) read with fetch and a ReadableStream: EventSource cannot send the key header.
import { headers } from "./api.js";

/** Split a server-sent-events buffer into complete events; returns [events, rest]. */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.replace(/\r\n/g, "\n").split("\n\n");
  const rest = blocks.pop();
  for (const block of blocks) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) events.push({ event, data: data.join("\n") });
  }
  return [events, rest];
}

/**
 * Follow the stream until stopped, reconnecting with backoff.
 * onState("connecting" | "live" | "offline", detail); onEvent(name, data); onFatal(status, message) for 401/403/503.
 */
export function follow({ onState, onEvent, onFatal }) {
  let stopped = false;
  let controller = null;
  let delay = 1000;

  async function once() {
    controller = new AbortController();
    onState("connecting");
    const response = await fetch("/api/stream", { headers: headers({ Accept: "text/event-stream" }), signal: controller.signal });
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).detail || message;
      } catch { /* not JSON */ }
      if ([401, 403, 503].includes(response.status)) {
        stopped = true;
        onFatal(response.status, message);
        return;
      }
      throw new Error(`stream answered ${response.status}: ${message}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const [events, rest] = parseEvents(buffer);
      buffer = rest;
      for (const { event, data } of events) {
        let parsed = data;
        try {
          parsed = JSON.parse(data);
        } catch { /* keep text */ }
        if (event === "ready") {
          delay = 1000;
          onState("live", parsed);
        }
        onEvent(event, parsed);
      }
    }
  }

  async function loop() {
    while (!stopped) {
      try {
        await once();
      } catch (err) {
        if (stopped || err.name === "AbortError") break;
      }
      if (stopped) break;
      onState("offline");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  loop();
  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
