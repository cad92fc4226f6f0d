// The API over HTTP, as any frontend reads it: a bearer key, JSON, `{error: {code, message}}`.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function client(key) {
  async function request(method, path, params, body) {
    const url = new URL("/api/v1" + path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
    }
    return data;
  }

  const get = (path, params) => request("GET", path, params);
  return {
    get,
    post: (path, body) => request("POST", path, undefined, body === undefined ? {} : body),
    // every item of a list, page after page (1,000 a page, the API's maximum)
    async all(path, params) {
      const items = [];
      let cursor = null;
      do {
        const page = await get(path, { ...params, limit: 1000, cursor });
        items.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      return items;
    },
  };
}

// A panel's data that may be missing (an endpoint not there yet, a role it refuses): the
// panel says "not available" instead of breaking the page.
export function settle(promise) {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}
