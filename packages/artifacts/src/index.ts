export { OPERATIONS_PREFIX, DEFAULT_RETENTION_DAYS } from "./constants.js";
