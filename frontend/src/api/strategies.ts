// Strategy types, straight from the gateway's OpenAPI document (routes_strategies.py).
import type { components } from './schema';

type S = components['schemas'];
export type Strategy = S['StrategyOut'];
export type StrategyAlert = S['StrategyAlertOut'];
export type Strategies = S['StrategiesOut'];
export type StrategyDay = S['StrategyDayOut'];
export type StrategyPnl = S['StrategyPnlOut'];
export type StrategyAction = 'enable' | 'disable' | 'flatten';
