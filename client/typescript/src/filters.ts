/**
 * Translation of MongoDB/Chroma-style filter objects into `fathom.v1.Filter`.
 *
 * ```ts
 * { year: { $gte: 2020 }, lang: "en" }              // year >= 2020 AND lang == "en"
 * { $or: [{ lang: "en" }, { lang: "de" }] }          // any of
 * { $and: [{ a: 1 }, { b: { $ne: 2 } }] }            // all of
 * { $not: { tags: { $contains: "draft" } } }         // negation
 * { $id: { $in: ["doc-1", "doc-2"] } }               // by document id
 * { published: { $gt: new Date("2024-05-01") } }     // timestamp bound
 * ```
 *
 * The rules are those of the Python SDK, one-to-one with the proto:
 * - several keys in one object are ANDed (`all`); one key maps to its node
 *   directly; `{}` is an empty `all`, which matches everything;
 * - a bare value means `$eq`; several operators on one field are ANDed;
 * - `$eq $ne $contains` take a scalar (string, number, boolean; a `Date` is
 *   sent as its RFC 3339 UTC string), `$in $nin` an array of scalars,
 *   `$gt $gte $lt $lte` a number or a `Date` (a Timestamp bound), `$exists`
 *   a boolean (`false` becomes `$not` of `exists`);
 * - `$id` takes a string, or `$eq`/`$in`/`$ne`/`$nin` (`$ne`/`$nin` become
 *   `$not` of an id condition).
 *
 * Anything else throws a {@link FilterError} naming the offending path.
 *
 * @module
 */

import { create, isMessage } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Bound,
  BoundSchema,
  ExistsSchema,
  type FieldCondition,
  FieldConditionSchema,
  type Filter,
  FilterSchema,
  type Scalar,
  ScalarListSchema,
  ScalarSchema,
} from "./gen/fathom/v1/filter_pb.js";

/** A value to compare a metadata field with. */
export type ScalarValue = string | number | boolean | Date;

/** Operators on one metadata field. */
export interface FieldOperators {
  $eq?: ScalarValue;
  $ne?: ScalarValue;
  $contains?: ScalarValue;
  $in?: readonly ScalarValue[];
  $nin?: readonly ScalarValue[];
  $gt?: number | Date;
  $gte?: number | Date;
  $lt?: number | Date;
  $lte?: number | Date;
  $exists?: boolean;
}

/** The operand of `$id`: one id, or id operators. */
export type IdOperand =
  | string
  | { $eq?: string; $in?: readonly string[]; $ne?: string; $nin?: readonly string[] };

/** A filter object in the `$gte` syntax described in this module. */
export interface FilterSpec {
  $and?: readonly FilterSpec[];
  $or?: readonly FilterSpec[];
  $not?: FilterSpec;
  $id?: IdOperand;
  [field: string]: ScalarValue | FieldOperators | IdOperand | FilterSpec | readonly FilterSpec[] | undefined;
}

/** A filter object that cannot be translated; the message names its path. */
export class FilterError extends TypeError {
  override name = "FilterError";

  constructor(
    /** Where in the filter the problem is, such as `".$or[1].year.$gt"`. */
    readonly path: string,
    /** What is wrong. */
    readonly problem: string,
  ) {
    super(`filter${path}: ${problem}`);
  }
}

const SCALAR_OPS = { $eq: "eq", $ne: "ne", $contains: "contains" } as const;
const LIST_OPS = { $in: "in", $nin: "notIn" } as const;
const BOUND_OPS = { $gt: "gt", $gte: "gte", $lt: "lt", $lte: "lte" } as const;
const LOGICAL = ["$and", "$or", "$not", "$id"];

/**
 * Translates a filter object into a `fathom.v1.Filter` message. A `Filter`
 * message is returned unchanged.
 *
 * @throws FilterError if the object is not a valid filter.
 */
export function toFilter(spec: FilterSpec | Filter): Filter {
  if (isMessage(spec, FilterSchema)) return spec;
  return documentNode(spec, "");
}

/** Converts a value into a `Scalar` (string, number or boolean). */
export function toScalar(value: unknown, path = ""): Scalar {
  if (typeof value === "boolean") return create(ScalarSchema, { kind: { case: "boolValue", value } });
  if (typeof value === "string") return create(ScalarSchema, { kind: { case: "stringValue", value } });
  if (typeof value === "number") return create(ScalarSchema, { kind: { case: "numberValue", value } });
  if (typeof value === "bigint") {
    return create(ScalarSchema, { kind: { case: "numberValue", value: Number(value) } });
  }
  if (value instanceof Date) {
    return create(ScalarSchema, { kind: { case: "stringValue", value: rfc3339(value) } });
  }
  throw new FilterError(path, `expected a string, number or boolean, got ${kind(value)}`);
}

/** Converts a number or a `Date` into a range `Bound`. */
export function toBound(value: unknown, path = ""): Bound {
  if (value instanceof Date) {
    checkDate(value, path);
    return create(BoundSchema, { value: { case: "timestamp", value: timestampFromDate(value) } });
  }
  if (typeof value === "number") return create(BoundSchema, { value: { case: "number", value } });
  if (typeof value === "bigint") return create(BoundSchema, { value: { case: "number", value: Number(value) } });
  throw new FilterError(path, `range operators take a number or a Date, got ${kind(value)}`);
}

/**
 * Formats a `Date` as an RFC 3339 UTC string, with milliseconds only when
 * non-zero (the Python SDK writes the same string for the same instant).
 */
export function rfc3339(date: Date): string {
  checkDate(date, "");
  return date.toISOString().replace(/\.000Z$/, "Z");
}

// -- tree walk ------------------------------------------------------------------

function documentNode(spec: unknown, path: string): Filter {
  if (!isPlainObject(spec)) throw new FilterError(path, `expected an object, got ${kind(spec)}`);
  const nodes: Filter[] = [];
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined) continue; // `{ a: undefined }` is how optional keys look in TS
    nodes.push(entry(key, value, path));
  }
  return nodes.length === 1 ? nodes[0]! : all(nodes);
}

function entry(key: string, value: unknown, path: string): Filter {
  if (key === "") throw new FilterError(path, "keys must be non-empty strings");
  const here = `${path}.${key}`;
  switch (key) {
    case "$and":
      return all(operands(value, here));
    case "$or":
      return create(FilterSchema, { node: { case: "any", value: { filters: operands(value, here) } } });
    case "$not":
      return not(documentNode(value, here));
    case "$id":
      return idCondition(value, here);
  }
  if (key.startsWith("$")) {
    throw new FilterError(here, `unknown logical operator "${key}" (expected one of ${LOGICAL.join(", ")})`);
  }
  return fieldNode(key, value, here);
}

function operands(value: unknown, path: string): Filter[] {
  if (!Array.isArray(value)) throw new FilterError(path, `expected an array of filters, got ${kind(value)}`);
  return value.map((item, i) => documentNode(item, `${path}[${i}]`));
}

function fieldNode(key: string, value: unknown, path: string): Filter {
  if (Array.isArray(value)) {
    throw new FilterError(path, "an array is not a value: use { $in: [...] } or { $contains: value }");
  }
  if (isPlainObject(value)) {
    const ops = Object.entries(value).filter(([, operand]) => operand !== undefined);
    if (ops.length === 0 || !ops.every(([op]) => op.startsWith("$"))) {
      throw new FilterError(
        path,
        'a field takes a value or an object of $operators; to test a nested field use a dotted key such as "author.name"',
      );
    }
    const nodes = ops.map(([op, operand]) => condition(key, op, operand, `${path}.${op}`));
    return nodes.length === 1 ? nodes[0]! : all(nodes);
  }
  return condition(key, "$eq", value, path);
}

function condition(key: string, op: string, operand: unknown, path: string): Filter {
  let test: FieldCondition["condition"];
  if (op in SCALAR_OPS) {
    test = { case: SCALAR_OPS[op as keyof typeof SCALAR_OPS], value: toScalar(operand, path) };
  } else if (op in LIST_OPS) {
    const values = list(operand, path).map((item, i) => toScalar(item, `${path}[${i}]`));
    test = { case: LIST_OPS[op as keyof typeof LIST_OPS], value: create(ScalarListSchema, { values }) };
  } else if (op in BOUND_OPS) {
    test = { case: BOUND_OPS[op as keyof typeof BOUND_OPS], value: toBound(operand, path) };
  } else if (op === "$exists") {
    if (typeof operand !== "boolean") {
      throw new FilterError(path, `$exists takes true or false, got ${kind(operand)}`);
    }
    const exists = fieldFilter(key, { case: "exists", value: create(ExistsSchema) });
    return operand ? exists : not(exists);
  } else {
    const known = [...Object.keys(SCALAR_OPS), ...Object.keys(LIST_OPS), ...Object.keys(BOUND_OPS), "$exists"];
    throw new FilterError(path, `unknown operator "${op}" (expected one of ${known.join(", ")})`);
  }
  return fieldFilter(key, test);
}

function idCondition(value: unknown, path: string): Filter {
  if (!isPlainObject(value)) return ids([id(value, path)]);
  const ops = Object.entries(value).filter(([, operand]) => operand !== undefined);
  if (ops.length === 0) throw new FilterError(path, "$id needs an operator: $eq, $in, $ne or $nin");
  const nodes = ops.map(([op, operand]) => {
    const here = `${path}.${op}`;
    switch (op) {
      case "$eq":
        return ids([id(operand, here)]);
      case "$in":
        return ids(list(operand, here).map((x, i) => id(x, `${here}[${i}]`)));
      case "$ne":
        return not(ids([id(operand, here)]));
      case "$nin":
        return not(ids(list(operand, here).map((x, i) => id(x, `${here}[${i}]`))));
      default:
        throw new FilterError(here, "$id takes only $eq, $in, $ne and $nin");
    }
  });
  return nodes.length === 1 ? nodes[0]! : all(nodes);
}

// -- small builders -------------------------------------------------------------------

function all(filters: Filter[]): Filter {
  return create(FilterSchema, { node: { case: "all", value: { filters } } });
}

function not(inner: Filter): Filter {
  return create(FilterSchema, { node: { case: "not", value: inner } });
}

function ids(values: string[]): Filter {
  return create(FilterSchema, { node: { case: "ids", value: { ids: values } } });
}

function fieldFilter(key: string, test: FieldCondition["condition"]): Filter {
  return create(FilterSchema, {
    node: { case: "field", value: create(FieldConditionSchema, { key, condition: test }) },
  });
}

function id(value: unknown, path: string): string {
  if (typeof value !== "string") throw new FilterError(path, `document ids are strings, got ${kind(value)}`);
  return value;
}

function list(value: unknown, path: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  throw new FilterError(path, `expected an array, got ${kind(value)}`);
}

function checkDate(date: Date, path: string): void {
  if (Number.isNaN(date.getTime())) throw new FilterError(path, "invalid Date");
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "Date";
  return typeof value;
}
